"""The SQLite store: one file, WAL, versioned migrations (:mod:`nbchat.core.migrations`).

It implements :class:`nbchat.core.store.Store`, and with :mod:`~nbchat.core.migrations`
and :mod:`~nbchat.core.sqlite_search` it is the only code that speaks SQL. Every write
that belongs to one turn happens inside one :meth:`SqliteStore.transaction`, so a crash
or a second kernel never leaves half a turn behind. Reads need no transaction.
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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbchat.core.chunk_texts import chunk_slices, indexes_by_file, texts_from_extracts
from nbchat.core.errors import StoreError
from nbchat.core.extractors.record import Extracted, Section
from nbchat.core.migrations import MIGRATIONS, migrate, schema_version
from nbchat.core.store import (
    AttachmentRecord,
    ChunkRow,
    ChunkText,
    Hit,
    MessageText,
    MessageVector,
    SearchFilter,
    Session,
    StoredFile,
    StoredMessage,
)

if TYPE_CHECKING:
    from nbchat.core.sqlite_search import VectorIndex

__all__ = ["SqliteStore"]

BUSY_TIMEOUT_MS = 30_000


class SqliteStore:
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
        self._indexes: dict[str, VectorIndex] = {}  # vectors per embedding model, loaded once
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
        except StoreError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"The nbchat database at {self.path} cannot be used: {exc}. "
                "Move it aside to start a new one, or set NBCHAT_DB."
            ) from exc

    # -- plumbing ---------------------------------------------------------------------

    @property
    def location(self) -> str:
        return str(self.path)

    def reopen(self) -> "SqliteStore":
        return SqliteStore(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SqliteStore":
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
        """The raw connection (for tests that inspect the file; not part of the protocol)."""
        return self._db

    @property
    def lock(self) -> threading.RLock:
        """Guards the connection between threads (not part of the protocol)."""
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
        db: Any = None,
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

    def set_system_prompt(self, db: Any, session_id: str, system_prompt: str) -> None:
        db.execute(
            "UPDATE sessions SET system_prompt = ? WHERE id = ?", (system_prompt, session_id)
        )

    def set_history(
        self, db: Any, session_id: str, *, start_seq: int, carried_files: str, compacted: bool
    ) -> None:
        db.execute(
            "UPDATE sessions SET history_start_seq = ?, carried_files = ?, "
            "compactions = compactions + ? WHERE id = ?",
            (start_seq, carried_files, 1 if compacted else 0, session_id),
        )

    # -- messages ---------------------------------------------------------------------

    def add_message(
        self,
        db: Any,
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
        db: Any,
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

    def cached_extract(self, sha256: str, version: str) -> Extracted | None:
        rows = self._query(
            "SELECT e.kind, e.text, e.notes, s.sections FROM extracts e "
            "LEFT JOIN extract_sections s "
            "ON s.sha256 = e.sha256 AND s.extractor_version = e.extractor_version "
            "WHERE e.sha256 = ? AND e.extractor_version = ?",
            (sha256, version),
        )
        if not rows:
            return None
        row = rows[0]
        sections = tuple(
            Section(unit, number, start, end, label)
            for unit, number, start, end, label in json.loads(row["sections"] or "[]")
        )
        return Extracted(row["text"], row["kind"], tuple(json.loads(row["notes"])), sections)

    def cached_path_hash(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        rows = self._query(
            "SELECT sha256 FROM path_hashes WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            (path, size_bytes, mtime_ns),
        )
        return str(rows[0][0]) if rows else None

    def cached_token_count(self, sha256: str, tokenizer: str) -> int | None:
        rows = self._query(
            "SELECT tokens FROM token_counts WHERE sha256 = ? AND tokenizer = ?",
            (sha256, tokenizer),
        )
        return int(rows[0][0]) if rows else None

    def put_extract(self, db: Any, sha256: str, version: str, extracted: Extracted) -> None:
        db.execute(
            "INSERT OR IGNORE INTO extracts (sha256, extractor_version, kind, text, notes) "
            "VALUES (?, ?, ?, ?, ?)",
            (sha256, version, extracted.kind, extracted.text, json.dumps(list(extracted.notes))),
        )
        if extracted.sections:
            located = [[s.unit, s.number, s.start, s.end, s.label] for s in extracted.sections]
            db.execute(
                "INSERT OR IGNORE INTO extract_sections (sha256, extractor_version, sections) "
                "VALUES (?, ?, ?)",
                (sha256, version, json.dumps(located)),
            )

    def put_path_hash(
        self, db: Any, path: str, size_bytes: int, mtime_ns: int, sha256: str
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO path_hashes (path, size_bytes, mtime_ns, sha256) "
            "VALUES (?, ?, ?, ?)",
            (path, size_bytes, mtime_ns, sha256),
        )

    def put_token_count(self, db: Any, sha256: str, tokenizer: str, tokens: int) -> None:
        db.execute(
            "INSERT OR IGNORE INTO token_counts (sha256, tokenizer, tokens) VALUES (?, ?, ?)",
            (sha256, tokenizer, tokens),
        )

    # -- search -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        search_filter: SearchFilter | None = None,
        query_vector: Sequence[float] | None = None,
        vector_model: str | None = None,
        cosine_floor: float | None = None,
    ) -> list[Hit]:
        from nbchat.core.sqlite_search import search_messages

        index = self._index(vector_model) if query_vector is not None and vector_model else None
        return search_messages(
            self._db,
            query,
            limit=limit,
            search_filter=search_filter,
            index=index,
            query_vector=query_vector if index is not None else None,
            lock=self._lock,
            cosine_floor=cosine_floor,
        )

    def browse(self, search_filter: SearchFilter, *, limit: int = 10) -> list[Hit]:
        from nbchat.core.sqlite_search import browse_messages

        return browse_messages(self._db, search_filter, limit=limit, lock=self._lock)

    def hits(self, message_ids: Sequence[int]) -> list[Hit]:
        from nbchat.core.sqlite_search import hits_by_id

        return hits_by_id(self._db, message_ids, self._lock)

    def _index(self, model: str) -> "VectorIndex":
        from nbchat.core.sqlite_search import VectorIndex

        with self._lock:
            index = self._indexes.get(model)
            if index is None:
                index = self._indexes[model] = VectorIndex(model)
            return index

    # -- embeddings -------------------------------------------------------------------

    def count_unembedded(self, model: str) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM messages m WHERE m.content != '' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.message_id = m.id AND e.model = ?)",
            (model,),
        )
        return int(rows[0][0])

    def unembedded(
        self, model: str, limit: int, skip: frozenset[int] = frozenset()
    ) -> list[MessageText]:
        rows = self._query(
            "SELECT m.id, m.content FROM messages m WHERE m.content != '' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.message_id = m.id AND e.model = ?) "
            "ORDER BY m.id DESC LIMIT ?",
            (model, limit + len(skip)),
        )
        found = [MessageText(int(r[0]), str(r[1])) for r in rows]
        return [m for m in found if m.message_id not in skip][:limit]

    def count_vectors(self, model: str) -> int:
        rows = self._query("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,))
        return int(rows[0][0])

    def add_vectors(self, db: Any, vectors: Sequence[MessageVector]) -> int:
        from nbchat.core.sqlite_search import vector_to_blob

        now = time.time()
        rows = [
            (v.message_id, v.model, v.chunk, len(v.vector), vector_to_blob(v.vector), now,
             v.message_id)
            for v in vectors
        ]
        db.executemany(
            "INSERT OR IGNORE INTO embeddings (message_id, model, chunk, dim, vector, created) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?)",
            rows,
        )
        return len({row[0] for row in rows})


    # -- copying a whole history (``nbchat db copy``; not part of the protocol) --------

    def import_session(self, db: Any, session: Session) -> bool:
        """Add ``session`` as it is (id, times, compaction state); False if it exists."""
        return bool(db.execute(
            "INSERT OR IGNORE INTO sessions (id, title, notebook, system_prompt, model, "
            "backend, parent_id, history_start_seq, carried_files, compactions, created, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session.id, session.title, session.notebook, session.system_prompt,
             session.model, session.backend, session.parent_id, session.history_start_seq,
             session.carried_files, session.compactions, session.created, session.updated),
        ).rowcount > 0)

    def import_message(self, db: Any, message: StoredMessage) -> int:
        """Add ``message`` with its ``seq`` and times; its id here (the existing one's if
        the session already has that ``seq``)."""
        db.execute(
            "INSERT OR IGNORE INTO messages (session_id, seq, role, content, rendered, "
            "status, error_kind, error_message, importance, tokens, usage, timings, model, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message.session_id, message.seq, message.role, message.content,
             message.rendered, message.status, message.error_kind, message.error_message,
             message.importance, message.tokens, json.dumps(message.usage),
             json.dumps(message.timings), message.model, message.created),
        )
        row = db.execute(
            "SELECT id FROM messages WHERE session_id = ? AND seq = ?",
            (message.session_id, message.seq),
        ).fetchone()
        return int(row[0])

    def cached_entries(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Every cache row: ("extract", (sha, version, Extracted)), ("path", (path, size,
        mtime_ns, sha)), ("tokens", (sha, tokenizer, tokens))."""
        for row in self._query("SELECT sha256, extractor_version FROM extracts"):
            found = self.cached_extract(row[0], row[1])
            if found is not None:
                yield "extract", (row[0], row[1], found)
        for row in self._query("SELECT path, size_bytes, mtime_ns, sha256 FROM path_hashes"):
            yield "path", tuple(row)
        for row in self._query("SELECT sha256, tokenizer, tokens FROM token_counts"):
            yield "tokens", tuple(row)

    def stored_vectors(self, message_ids: Sequence[int]) -> list[MessageVector]:
        """The vectors of these messages, every model."""
        import numpy as np

        if not message_ids:
            return []
        marks = ",".join("?" * len(message_ids))
        rows = self._query(
            f"SELECT message_id, model, chunk, vector FROM embeddings "
            f"WHERE message_id IN ({marks}) ORDER BY id",
            list(message_ids),
        )
        return [
            MessageVector(int(r[0]), str(r[1]), int(r[2]),
                          [float(x) for x in np.frombuffer(r[3], dtype="<f4")])
            for r in rows
        ]


    # -- file chunks --------------------------------------------------------------------

    def has_chunks(self, sha256: str, version: str) -> bool:
        return bool(self._query(
            "SELECT 1 FROM file_chunks WHERE sha256 = ? AND extractor_version = ? LIMIT 1",
            (sha256, version),
        ))

    def put_chunks(self, db: Any, sha256: str, version: str, chunks: Sequence[ChunkRow]) -> None:
        """Each chunk's place in the extraction, and its words in ``file_chunks_fts``
        (fed from the stored extraction: the index keeps no text of its own)."""
        texts = chunk_slices(_extract_text(db, sha256, version), sha256, version, chunks)
        has_fts = bool(db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'file_chunks_fts'").fetchone())
        for chunk, text in zip(chunks, texts):
            added = db.execute(
                "INSERT OR IGNORE INTO file_chunks "
                "(sha256, extractor_version, idx, start, stop, label) VALUES (?, ?, ?, ?, ?, ?)",
                (sha256, version, chunk.index, chunk.start, chunk.end, chunk.label),
            )
            if added.rowcount and has_fts:
                db.execute("INSERT INTO file_chunks_fts(rowid, text) VALUES (?, ?)",
                           (added.lastrowid, text))

    def rank_chunks(
        self, sha256: str, version: str, terms: Sequence[str], limit: int
    ) -> list[tuple[int, float]]:
        """BM25 over the file's chunks (FTS5); without FTS5, the most terms held first."""
        if not terms:
            return []
        if self._query("SELECT 1 FROM sqlite_master WHERE name = 'file_chunks_fts'"):
            match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
            rows = self._query(
                "SELECT c.idx, bm25(file_chunks_fts) AS rank FROM file_chunks_fts "
                "JOIN file_chunks c ON c.id = file_chunks_fts.rowid "
                "WHERE file_chunks_fts MATCH ? AND c.sha256 = ? AND c.extractor_version = ? "
                "ORDER BY rank, c.idx LIMIT ?",
                (match, sha256, version, limit),
            )
            return [(int(r[0]), -float(r[1])) for r in rows]
        places = self._query(
            "SELECT idx, sha256, extractor_version, start, stop FROM file_chunks "
            "WHERE sha256 = ? AND extractor_version = ? ORDER BY idx",
            (sha256, version),
        )
        with self._lock:
            texts = texts_from_extracts(
                [tuple(r) for r in places], partial(_extract_text, self._db))
        return _most_terms_held(texts, terms, limit)

    def unembedded_chunks(
        self, model: str, limit: int, skip: frozenset[int] = frozenset()
    ) -> list[ChunkText]:
        rows = self._query(
            "SELECT c.id, c.sha256, c.extractor_version, c.start, c.stop FROM file_chunks c "
            "WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id "
            "AND v.model = ?) ORDER BY c.id DESC LIMIT ?",
            (model, limit + len(skip)),
        )
        places = [tuple(r) for r in rows if int(r[0]) not in skip][:limit]
        with self._lock:
            return texts_from_extracts(places, partial(_extract_text, self._db))

    def add_chunk_vectors(
        self, db: Any, model: str, vectors: Sequence[tuple[int, Sequence[float]]]
    ) -> int:
        from nbchat.core.sqlite_search import vector_to_blob

        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO chunk_vectors (chunk_id, model, dim, vector) "
            "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM file_chunks WHERE id = ?)",
            [(cid, model, len(v), vector_to_blob(v), cid) for cid, v in vectors],
        )
        return int(db.total_changes - before)

    def rank_chunk_vectors(
        self, sha256: str, version: str, model: str, vector: Sequence[float], limit: int
    ) -> list[tuple[int, float]]:
        import numpy as np

        rows = self._query(
            "SELECT c.idx, v.vector FROM chunk_vectors v JOIN file_chunks c ON c.id = v.chunk_id "
            "WHERE c.sha256 = ? AND c.extractor_version = ? AND v.model = ? AND v.dim = ?",
            (sha256, version, model, len(vector)),
        )
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        query = np.asarray(vector, dtype="<f4")
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        cosines = matrix @ query / np.maximum(norms, 1e-12)
        ranked = sorted(zip((int(r[0]) for r in rows), cosines.tolist()), key=lambda p: -p[1])
        return [(index, float(cosine)) for index, cosine in ranked[:limit]]

    def record_sent_chunks(
        self, db: Any, session_id: str, message_id: int, sha256: str, indexes: Sequence[int]
    ) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO sent_chunks (session_id, message_id, sha256, idx) "
            "VALUES (?, ?, ?, ?)",
            [(session_id, message_id, sha256, index) for index in indexes],
        )

    def sent_chunks(self, session_id: str, *, from_seq: int = 0) -> dict[str, frozenset[int]]:
        rows = self._query(
            "SELECT c.sha256, c.idx FROM sent_chunks c JOIN messages m ON m.id = c.message_id "
            "WHERE c.session_id = ? AND m.seq >= ?",
            (session_id, from_seq),
        )
        return indexes_by_file(rows)


def _extract_text(db: sqlite3.Connection, sha256: str, version: str) -> str | None:
    row = db.execute(
        "SELECT text FROM extracts WHERE sha256 = ? AND extractor_version = ?",
        (sha256, version),
    ).fetchone()
    return None if row is None else str(row[0])


def _most_terms_held(
    chunks: Sequence[ChunkText], terms: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    """Without FTS5: the chunks holding the most of ``terms`` (case-insensitive), by
    index among equals; ``chunk_id`` here is the chunk's index in its file."""
    lowered = [t.lower() for t in terms]
    held = [
        (chunk.chunk_id, sum(term in text for term in lowered))
        for chunk in chunks
        for text in (chunk.text.lower(),)
    ]
    ranked = sorted((pair for pair in held if pair[1] > 0), key=lambda p: (-p[1], p[0]))
    return [(index, float(n)) for index, n in ranked[:limit]]


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
