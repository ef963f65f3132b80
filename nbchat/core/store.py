"""The conversation database: one SQLite file, WAL, versioned migrations.

Every write that belongs to one turn happens inside one :meth:`Store.transaction`, so a
crash or a second kernel never leaves half a turn behind. Reads need no transaction.
"""

from __future__ import annotations

import bisect
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbchat.core.errors import StoreError
from nbchat.core.migrations import MIGRATIONS, migrate, schema_version

__all__ = [
    "Store",
    "Session",
    "StoredMessage",
    "StoredFile",
    "AttachmentRecord",
    "open_store",
]

BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Session:
    id: str
    title: str
    notebook: str | None
    system_prompt: str
    model: str | None
    backend: str | None
    parent_id: str | None
    history_start_seq: int
    carried_files: str
    compactions: int
    created: float
    updated: float


@dataclass(frozen=True)
class StoredMessage:
    id: int
    session_id: str
    seq: int
    role: str
    content: str
    rendered: str
    status: str
    error_kind: str | None
    error_message: str | None
    importance: float
    tokens: int | None
    usage: dict[str, Any]
    timings: dict[str, Any]
    model: str | None
    created: float


@dataclass(frozen=True)
class StoredFile:
    id: int
    name: str
    sha256: str
    size_bytes: int
    mime: str
    created: float


@dataclass(frozen=True)
class AttachmentRecord:
    id: int
    session_id: str
    message_id: int | None
    message_seq: int | None
    kind: str
    name: str
    path: str | None
    sha256: str
    fingerprint: str | None
    total_tokens: int | None
    kept_tokens: int | None
    forgotten: bool
    created: float


def open_store(path: str | Path) -> "Store":
    return Store(path)


class Store:
    """A connection to the nbchat database at ``path`` (created and migrated on open)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path),
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"Cannot open the nbchat database at {self.path}: {exc}. "
                "Check the folder is writable, or set NBCHAT_DB / c.NbChat.db_path."
            ) from exc
        self._lock = threading.RLock()
        # Messages are only ever appended (never updated or deleted one by one), so each
        # session's messages read so far are kept, and a later read fetches only newer ones.
        self._history: dict[str, list[StoredMessage]] = {}
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA foreign_keys = ON")
            _use_wal(self._db, BUSY_TIMEOUT_MS / 1000)
            self._db.execute("PRAGMA synchronous = NORMAL")
            version = schema_version(self._db)
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"The nbchat database at {self.path} has schema version {version}, "
                    f"newer than this nbchat knows ({len(MIGRATIONS)}): upgrade nbchat."
                )
            if version < len(MIGRATIONS):
                migrate(self._db)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"The nbchat database at {self.path} cannot be used: {exc}. "
                "Move it aside to start a new one, or set NBCHAT_DB."
            ) from exc

    # -- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it lands, or none."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot write to {self.path}: {exc}") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise StoreError(f"Cannot write to {self.path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for modules that own their own tables (memory)."""
        return self._db

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- sessions ---------------------------------------------------------------------

    def create_session(
        self,
        *,
        title: str = "",
        notebook: str | None = None,
        system_prompt: str = "",
        model: str | None = None,
        backend: str | None = None,
        parent_id: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> Session:
        """A new session; pass ``db`` to create it inside a running transaction."""
        session_id = secrets.token_hex(4)
        now = time.time()
        sql = (
            "INSERT INTO sessions (id, title, notebook, system_prompt, model, backend, "
            "parent_id, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        params = (session_id, title, notebook, system_prompt, model, backend, parent_id, now, now)
        if db is not None:
            db.execute(sql, params)
        else:
            with self.transaction() as tx:
                tx.execute(sql, params)
        return Session(
            session_id, title, notebook, system_prompt, model, backend, parent_id, 0, "", 0,
            now, now,
        )

    def get_session(self, key: str) -> Session | None:
        """A session by id, else by exact title (the newest of that title)."""
        rows = self._query("SELECT * FROM sessions WHERE id = ?", (key,))
        if not rows:
            rows = self._query(
                "SELECT * FROM sessions WHERE title = ? ORDER BY updated DESC LIMIT 1", (key,)
            )
        return _session(rows[0]) if rows else None

    def latest_session_for_notebook(self, notebook: str) -> Session | None:
        rows = self._query(
            "SELECT * FROM sessions WHERE notebook = ? ORDER BY updated DESC LIMIT 1",
            (notebook,),
        )
        return _session(rows[0]) if rows else None

    def list_sessions(self, *, notebook: str | None = None, limit: int = 50) -> list[Session]:
        if notebook is None:
            rows = self._query(
                "SELECT * FROM sessions ORDER BY updated DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._query(
                "SELECT * FROM sessions WHERE notebook = ? ORDER BY updated DESC LIMIT ?",
                (notebook, limit),
            )
        return [_session(r) for r in rows]

    def message_counts(self) -> dict[str, int]:
        rows = self._query("SELECT session_id, COUNT(*) AS n FROM messages GROUP BY session_id")
        return {r["session_id"]: r["n"] for r in rows}

    def delete_session(self, session_id: str) -> bool:
        with self._lock:
            self._history.pop(session_id, None)
        with self.transaction() as tx:
            return tx.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    # -- messages ---------------------------------------------------------------------

    def add_message(
        self,
        db: sqlite3.Connection,
        *,
        session_id: str,
        role: str,
        content: str,
        rendered: str,
        status: str = "complete",
        error_kind: str | None = None,
        error_message: str | None = None,
        importance: float = 0.5,
        tokens: int | None = None,
        usage: dict[str, Any] | None = None,
        timings: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> StoredMessage:
        """Append a message inside the caller's transaction; ``seq`` is the next free one."""
        seq = db.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE session_id = ?",
            (session_id,),
        ).fetchone()[0]
        now = time.time()
        cursor = db.execute(
            "INSERT INTO messages (session_id, seq, role, content, rendered, status, "
            "error_kind, error_message, importance, tokens, usage, timings, model, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id, seq, role, content, rendered, status, error_kind, error_message,
                importance, tokens, json.dumps(usage or {}), json.dumps(timings or {}), model,
                now,
            ),
        )
        db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        return StoredMessage(
            int(cursor.lastrowid or 0), session_id, seq, role, content, rendered, status,
            error_kind, error_message, importance, tokens, usage or {}, timings or {}, model,
            now,
        )

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int | None = None
    ) -> list[StoredMessage]:
        """Messages from ``seq`` ``from_seq`` on (the last ``limit`` of them when given).

        Without ``limit`` the answer comes from the per-session cache, topped up with the
        messages stored since the last read (by this process or another), so a turn of a
        long session does not re-read and re-decode its whole history.
        """
        if limit is None:
            with self._lock:
                if not self._db.in_transaction:  # uncommitted rows must not be cached
                    cached = self._history.setdefault(session_id, [])
                    after = cached[-1].seq if cached else -1
                    rows = self._db.execute(
                        "SELECT * FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq",
                        (session_id, after),
                    ).fetchall()
                    cached.extend(_message(r) for r in rows)
                    return cached[bisect.bisect_left(cached, from_seq, key=lambda m: m.seq):]
        sql = "SELECT * FROM messages WHERE session_id = ? AND seq >= ? ORDER BY seq"
        params: list[Any] = [session_id, from_seq]
        if limit is not None:
            sql = (
                "SELECT * FROM (SELECT * FROM messages WHERE session_id = ? AND seq >= ? "
                "ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            )
            params.append(limit)
        return [_message(r) for r in self._query(sql, params)]

    def get_message(self, message_id: int) -> StoredMessage | None:
        rows = self._query("SELECT * FROM messages WHERE id = ?", (message_id,))
        return _message(rows[0]) if rows else None

    def last_message(self, session_id: str) -> StoredMessage | None:
        rows = self._query(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
            (session_id,),
        )
        return _message(rows[0]) if rows else None

    # -- stored files -----------------------------------------------------------------

    def add_file(self, name: str, data: bytes, *, sha256: str, mime: str) -> StoredFile:
        """Store ``data`` under ``name``; the same name again replaces the bytes."""
        now = time.time()
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO files (name, data, sha256, size_bytes, mime, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "data = excluded.data, sha256 = excluded.sha256, "
                "size_bytes = excluded.size_bytes, mime = excluded.mime, "
                "created = excluded.created",
                (name, data, sha256, len(data), mime, now),
            )
        found = self.get_file(name)
        assert found is not None
        return found

    def get_file(self, key: str | int) -> StoredFile | None:
        """A stored file by id (an int or all-digit text) or by name."""
        rows: list[sqlite3.Row] = []
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            rows = self._query(
                "SELECT id, name, sha256, size_bytes, mime, created FROM files WHERE id = ?",
                (int(key),),
            )
        if not rows:
            rows = self._query(
                "SELECT id, name, sha256, size_bytes, mime, created FROM files WHERE name = ?",
                (str(key),),
            )
        return StoredFile(*rows[0]) if rows else None

    def file_bytes(self, file_id: int) -> bytes:
        rows = self._query("SELECT data FROM files WHERE id = ?", (file_id,))
        if not rows:
            raise StoreError(f"Stored file {file_id} is gone: list them with `%chat stored`.")
        return bytes(rows[0][0])

    def list_files(self) -> list[StoredFile]:
        rows = self._query(
            "SELECT id, name, sha256, size_bytes, mime, created FROM files ORDER BY name"
        )
        return [StoredFile(*r) for r in rows]

    def remove_file(self, key: str | int) -> StoredFile | None:
        found = self.get_file(key)
        if found is None:
            return None
        with self.transaction() as tx:
            tx.execute("DELETE FROM files WHERE id = ?", (found.id,))
        return found

    # -- attachments ------------------------------------------------------------------

    def record_attachment(
        self,
        db: sqlite3.Connection,
        *,
        session_id: str,
        message_id: int | None,
        kind: str,
        name: str,
        path: str | None,
        sha256: str,
        fingerprint: str | None = None,
        total_tokens: int | None = None,
        kept_tokens: int | None = None,
    ) -> None:
        """Record an attachment once per (session, kind, name, content); re-attaching un-forgets."""
        db.execute(
            "INSERT INTO attachments (session_id, message_id, kind, name, path, sha256, "
            "fingerprint, total_tokens, kept_tokens, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(session_id, kind, name, sha256) DO UPDATE SET forgotten = 0",
            (
                session_id, message_id, kind, name, path, sha256, fingerprint, total_tokens,
                kept_tokens, time.time(),
            ),
        )

    def attachments(self, session_id: str, *, include_forgotten: bool = False) -> list[AttachmentRecord]:
        sql = (
            "SELECT a.*, m.seq AS message_seq FROM attachments a "
            "LEFT JOIN messages m ON m.id = a.message_id WHERE a.session_id = ?"
        )
        if not include_forgotten:
            sql += " AND a.forgotten = 0"
        sql += " ORDER BY a.id"
        return [_attachment(r) for r in self._query(sql, (session_id,))]

    def forget_attachment(self, session_id: str, name: str) -> int:
        """Stop re-including a file in this session; returns how many records matched."""
        with self.transaction() as tx:
            return tx.execute(
                "UPDATE attachments SET forgotten = 1 WHERE session_id = ? AND name = ?",
                (session_id, name),
            ).rowcount

    # -- caches -----------------------------------------------------------------------

    def cached_extract(self, sha256: str, version: str) -> tuple[str, str, list[str]] | None:
        rows = self._query(
            "SELECT kind, text, notes FROM extracts WHERE sha256 = ? AND extractor_version = ?",
            (sha256, version),
        )
        if not rows:
            return None
        return rows[0]["kind"], rows[0]["text"], json.loads(rows[0]["notes"])

    def cached_path_hash(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        rows = self._query(
            "SELECT sha256 FROM path_hashes WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            (path, size_bytes, mtime_ns),
        )
        return rows[0][0] if rows else None

    def cached_token_count(self, sha256: str, tokenizer: str) -> int | None:
        rows = self._query(
            "SELECT tokens FROM token_counts WHERE sha256 = ? AND tokenizer = ?",
            (sha256, tokenizer),
        )
        return int(rows[0][0]) if rows else None

    @staticmethod
    def put_extract(
        db: sqlite3.Connection, sha256: str, version: str, kind: str, text: str, notes: Sequence[str]
    ) -> None:
        db.execute(
            "INSERT OR IGNORE INTO extracts (sha256, extractor_version, kind, text, notes) "
            "VALUES (?, ?, ?, ?, ?)",
            (sha256, version, kind, text, json.dumps(list(notes))),
        )

    @staticmethod
    def put_path_hash(
        db: sqlite3.Connection, path: str, size_bytes: int, mtime_ns: int, sha256: str
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO path_hashes (path, size_bytes, mtime_ns, sha256) "
            "VALUES (?, ?, ?, ?)",
            (path, size_bytes, mtime_ns, sha256),
        )

    @staticmethod
    def put_token_count(db: sqlite3.Connection, sha256: str, tokenizer: str, tokens: int) -> None:
        db.execute(
            "INSERT OR IGNORE INTO token_counts (sha256, tokenizer, tokens) VALUES (?, ?, ?)",
            (sha256, tokenizer, tokens),
        )


def _use_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to WAL mode. Two connections creating the file at once can make SQLite
    answer "database is locked" at once, without its busy handler: retry until the
    timeout, as the busy handler would."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _session(row: sqlite3.Row) -> Session:
    return Session(
        row["id"], row["title"], row["notebook"], row["system_prompt"], row["model"],
        row["backend"], row["parent_id"], row["history_start_seq"], row["carried_files"],
        row["compactions"], row["created"], row["updated"],
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        row["id"], row["session_id"], row["seq"], row["role"], row["content"],
        row["rendered"], row["status"], row["error_kind"], row["error_message"],
        row["importance"], row["tokens"], json.loads(row["usage"] or "{}"),
        json.loads(row["timings"] or "{}"), row["model"], row["created"],
    )


def _attachment(row: sqlite3.Row) -> AttachmentRecord:
    return AttachmentRecord(
        row["id"], row["session_id"], row["message_id"], row["message_seq"], row["kind"],
        row["name"], row["path"], row["sha256"], row["fingerprint"], row["total_tokens"],
        row["kept_tokens"], bool(row["forgotten"]), row["created"],
    )
