"""Looking at an nbchat database from the outside: counts, bytes, and the turn invariants.

Every function takes the test's database as ``NBCHAT_DB`` names it: a SQLite file's path,
or a ``postgresql://`` URL of a user's role. A PostgreSQL database is read as the
server's superuser, who sees every row whatever its owner (row-level security binds the
users and, being forced, the tables' owner too); the SQL below is written once, with
SQLite's ``?`` placeholders, and runs in the ``nbchat`` schema there.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Location = Path | str  # a SQLite file, or a postgresql:// URL

__all__ = [
    "Snapshot",
    "rows",
    "database_text",
    "snapshot",
    "row_counts",
    "integrity",
    "half_written_turns",
    "seq_problems",
    "database_bytes",
    "INTERNAL_NAMES",
]

# What a traceback or an internal exception leaking into a message looks like.
INTERNAL_NAMES = re.compile(
    r"Traceback|File \"|\b[A-Z][A-Za-z]*(?:Error|Exception|Warning)\b|\bpypdf\.|\bzipfile\.|"
    r"\bsqlite3\.|\bhttpx\.|\bhttpcore\."
)


def is_postgres(location: Location) -> bool:
    return str(location).startswith("postgresql://")


def superuser_url(location: Location) -> str:
    """The same database reached as the superuser ``postgres`` (who bypasses RLS)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(str(location))
    params["user"] = "postgres"
    params.pop("password", None)
    return make_conninfo(**params)


class _Reader:
    """Runs ``?``-placeholder SQL on either store, read-only."""

    def __init__(self, location: Location) -> None:
        self.postgres = is_postgres(location)
        if self.postgres:
            import psycopg

            self._db: Any = psycopg.connect(superuser_url(location), autocommit=True)
            self._db.execute("SET search_path TO nbchat, public")
            self._db.execute("SET default_transaction_read_only = on")
        else:
            self._db = sqlite3.connect(f"file:{location}?mode=ro", uri=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return [tuple(r) for r in self._db.execute(sql, params).fetchall()]

    def tables(self) -> list[str]:
        if self.postgres:
            return [r[0] for r in self.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'nbchat' ORDER BY 1")]
        return [r[0] for r in self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]

    def close(self) -> None:
        self._db.close()


@contextmanager
def _reader(location: Location) -> Iterator[_Reader]:
    reader = _Reader(location)
    try:
        yield reader
    finally:
        reader.close()


def rows(location: Location, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one query (``?`` placeholders), read from outside the store."""
    with _reader(location) as db:
        return db.execute(sql, params)


def row_counts(location: Location) -> dict[str, int]:
    """Rows per table (virtual-table shadow tables included: they change on writes too)."""
    with _reader(location) as db:
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"')[0][0] for t in db.tables()}


def database_bytes(path: Path) -> bytes:
    """The main file, the WAL and the shared-memory index, as bytes (for searching)."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def database_text(location: Location) -> bytes:
    """Everything the database holds, for searching: a SQLite file's bytes, or every
    column of every row of every nbchat table on PostgreSQL (bytes as stored, the rest
    as text), the tables found in the catalogue so a new one is searched too."""
    if not is_postgres(location):
        return database_bytes(Path(location))
    parts: list[bytes] = []
    with _reader(location) as db:
        for table in db.tables():
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    parts.append(value if isinstance(value, bytes)
                                 else str(value).encode("utf-8"))
    return b"\n".join(parts)


@dataclass(frozen=True)
class Snapshot:
    """Row counts and a digest of the contents (SQLite: the sha256 of the main file and
    of the WAL; PostgreSQL: the sha256 of every table's rows, in a stable order)."""

    counts: dict[str, int]
    main_sha256: str
    wal_sha256: str


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def snapshot(location: Location) -> Snapshot:
    if not is_postgres(location):
        path = Path(location)
        return Snapshot(row_counts(path), _sha(path), _sha(path.with_name(path.name + "-wal")))
    digest = hashlib.sha256()
    with _reader(location) as db:
        for table in db.tables():
            digest.update(table.encode())
            for (text,) in db.execute(f'SELECT t::text FROM "{table}" t ORDER BY 1'):
                digest.update(text.encode("utf-8") + b"\0")
    return Snapshot(row_counts(location), digest.hexdigest(), "server")


def integrity(location: Location) -> str:
    """``ok``, or what is broken: SQLite's ``integrity_check``; on PostgreSQL, every
    nbchat index valid and ready, and every table readable to its end."""
    with _reader(location) as db:
        if not db.postgres:
            return ";".join(r[0] for r in db.execute("PRAGMA integrity_check"))
        problems = [f"index {name} is not valid" for (name,) in db.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'nbchat' AND NOT (i.indisvalid AND i.indisready)"
        )]
        for table in db.tables():
            db.execute(f'SELECT count(*) FROM "{table}"')
        return ";".join(problems) or "ok"


def seq_problems(location: Location) -> list[str]:
    """Sessions whose message sequence is not exactly 0, 1, 2, ... (gaps or duplicates)."""
    with _reader(location) as db:
        problems = []
        for (session_id,) in db.execute("SELECT id FROM sessions"):
            seqs = [r[0] for r in db.execute(
                "SELECT seq FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            )]
            if seqs != list(range(len(seqs))):
                problems.append(f"session {session_id}: seqs {seqs[:10]}… ({len(seqs)})")
        return problems


def half_written_turns(location: Location, files_per_question: int = 0) -> list[str]:
    """Rows that only part of a turn's transaction could have left behind.

    A question stored without its answer is allowed (the answer's transaction is a
    second one). Not allowed: a message without its session, an answer without the
    question before it, an attachment without its message, a question that should
    have ``files_per_question`` attachment records and has another number, or a
    recorded attachment whose extracted text is missing from the cache.
    """
    with _reader(location) as db:
        found = []
        for (message_id,) in db.execute(
            "SELECT m.id FROM messages m LEFT JOIN sessions s ON s.id = m.session_id "
            "WHERE s.id IS NULL"
        ):
            found.append(f"message {message_id} has no session")
        for message_id, session_id, seq in db.execute(
            "SELECT id, session_id, seq FROM messages WHERE role = 'assistant'"
        ):
            before = db.execute(
                "SELECT role FROM messages WHERE session_id = ? AND seq = ?", (session_id, seq - 1)
            )
            if not before or before[0][0] != "user":
                found.append(f"answer {message_id} has no question before it")
        for (attachment_id,) in db.execute(
            "SELECT a.id FROM attachments a LEFT JOIN messages m ON m.id = a.message_id "
            "WHERE m.id IS NULL"
        ):
            found.append(f"attachment {attachment_id} has no message")
        if files_per_question:
            for message_id, count in db.execute(
                "SELECT m.id, COUNT(a.id) FROM messages m LEFT JOIN attachments a "
                "ON a.message_id = m.id WHERE m.role = 'user' GROUP BY m.id"
            ):
                if count != files_per_question:
                    found.append(f"question {message_id} has {count} attachment records")
            for (sha,) in db.execute(
                "SELECT a.sha256 FROM attachments a LEFT JOIN extracts e ON e.sha256 = a.sha256 "
                "WHERE e.sha256 IS NULL"
            ):
                found.append(f"attachment {sha[:12]} has no cached extract")
        return found
