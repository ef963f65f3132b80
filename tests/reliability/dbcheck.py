"""Looking at an nbchat database from the outside: counts, bytes, and the turn invariants."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Snapshot",
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


def _readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table (virtual-table shadow tables included: they change on writes too)."""
    db = _readonly(path)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        db.close()


def database_bytes(path: Path) -> bytes:
    """The main file, the WAL and the shared-memory index, as bytes (for searching)."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


@dataclass(frozen=True)
class Snapshot:
    """Row counts and the sha256 of the main file and of the WAL."""

    counts: dict[str, int]
    main_sha256: str
    wal_sha256: str


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def snapshot(path: Path) -> Snapshot:
    return Snapshot(row_counts(path), _sha(path), _sha(path.with_name(path.name + "-wal")))


def integrity(path: Path) -> str:
    db = _readonly(path)
    try:
        return ";".join(r[0] for r in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def seq_problems(path: Path) -> list[str]:
    """Sessions whose message sequence is not exactly 0, 1, 2, ... (gaps or duplicates)."""
    db = _readonly(path)
    try:
        problems = []
        for (session_id,) in db.execute("SELECT id FROM sessions"):
            seqs = [r[0] for r in db.execute(
                "SELECT seq FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            )]
            if seqs != list(range(len(seqs))):
                problems.append(f"session {session_id}: seqs {seqs[:10]}… ({len(seqs)})")
        return problems
    finally:
        db.close()


def half_written_turns(path: Path, files_per_question: int = 0) -> list[str]:
    """Rows that only part of a turn's transaction could have left behind.

    A question stored without its answer is allowed (the answer's transaction is a
    second one). Not allowed: a message without its session, an answer without the
    question before it, an attachment without its message, a question that should
    have ``files_per_question`` attachment records and has another number, or a
    recorded attachment whose extracted text is missing from the cache.
    """
    db = _readonly(path)
    try:
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
            ).fetchone()
            if before is None or before[0] != "user":
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
    finally:
        db.close()
