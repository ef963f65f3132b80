"""The team store: PostgreSQL + pgvector, one database for many users' kernels.

It implements :class:`nbchat.core.store.Store` with the same behaviour as the SQLite
store; what differs is who sees what. Each kernel connects as its user's own role and
the tables (made by ``nbchat db init``, :mod:`nbchat.core.postgres_migrations`) force
row-level security, so every read and write here is scoped to that role by the server
itself. Lists (sessions, files, search, embeddings) keep to the user's own rows; a
session another user shared with one of the user's groups is read by its id.

Every write of one turn step happens inside one :meth:`PostgresStore.transaction`: a
crash, a killed kernel or a server restart leaves none of it. A message's ``seq`` is
taken under a lock on its session's row, so concurrent writers never collide or leave a
gap. A connection the server dropped is replaced on the next call; the call that met it
fails with a :class:`StoreError` naming the server.
"""

from __future__ import annotations

import bisect
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

from nbchat.core.chunk_texts import chunk_slices, indexes_by_file, texts_from_extracts
from nbchat.core.errors import StoreError
from nbchat.core.extractors.record import Extracted, Section
from nbchat.core.postgres import connect, keep_nul_characters, redact_url
from nbchat.core.postgres_migrations import SCHEMA, check_schema
from nbchat.core.ranking import RRF_K, fuse, query_terms
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

__all__ = ["PostgresStore"]

CANDIDATES_MIN = 50
# HNSW candidates per query: rows of other users (and of filtered-out sessions) are
# dropped after the index scan, so a query asks for more than it keeps.
HNSW_EF_SEARCH = 400
SESSION_ID_TRIES = 5
TOKEN_COUNTS_KEPT = 10_000  # token counts remembered in memory, per store
_PUT_TOKEN_COUNT = (
    "INSERT INTO token_counts (sha256, tokenizer, tokens) VALUES (%s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)

_SESSION_COLUMNS = (
    "id, title, notebook, system_prompt, model, backend, parent_id, history_start_seq, "
    "carried_files, compactions, created, updated"
)
_MESSAGE_COLUMNS = (
    "id, session_id, seq, role, content, rendered, status, error_kind, error_message, "
    "importance, tokens, usage, timings, model, created"
)
_FILE_COLUMNS = "id, name, sha256, size_bytes, mime, created"


class PostgresStore:
    """A connection, as the user's own role, to the nbchat tables at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._history: dict[str, list[StoredMessage]] = {}
        # (sha256, tokenizer) -> tokens: a count never changes, so one read per kernel.
        self._token_counts: dict[tuple[str, str], int] = {}
        self._queued_token_counts: list[tuple[str, str, int]] = []
        self._db: Any = None
        self._db = self._connect()

    # -- plumbing ---------------------------------------------------------------------

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def reopen(self) -> "PostgresStore":
        return PostgresStore(self.url)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    def __enter__(self) -> "PostgresStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> Any:
        db = connect(self.url)
        keep_nul_characters(db)
        try:
            with _translated(self.url):
                # A commit returns once the server has it, before its WAL reaches the
                # disk: the durability of SQLite in WAL mode with synchronous=NORMAL (see
                # docs/team.md, "Durability"), unless the URL's options name another.
                settings = f"SET search_path TO {SCHEMA}, public"
                if "synchronous_commit" not in self.url:
                    settings += "; SET synchronous_commit = off"
                db.execute(settings)  # one round trip
                check_schema(db, self.url)
                from pgvector.psycopg import register_vector

                register_vector(db)
        except BaseException:
            db.close()
            raise
        return db

    def _connection(self) -> Any:
        """The live connection; a new one when the server dropped the last."""
        if self._db is None or self._db.closed or self._db.broken:
            if self._db is not None:
                self._db.close()
                self._history.clear()  # another server may have other rows
            self._db = None
            self._db = self._connect()
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction: all of it lands, or none.

        The token counts it cached (``put_token_count``) are written with its COMMIT,
        in one round trip (a pipeline): nothing waits for their answer.
        """
        import psycopg

        with self._lock, _translated(self.url):
            db = self._connection()
            if db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with db.transaction():  # inside another one: a savepoint
                    yield db
                return
            self._queued_token_counts.clear()
            db.execute("BEGIN")
            try:
                yield db
                with db.pipeline():
                    if self._queued_token_counts:
                        db.cursor().executemany(_PUT_TOKEN_COUNT, self._queued_token_counts)
                    db.execute("COMMIT")
            except BaseException:
                status = psycopg.pq.TransactionStatus
                if not db.broken and db.info.transaction_status in (status.INTRANS,
                                                                    status.INERROR):
                    with suppress(psycopg.Error):  # the first error is the one to report
                        db.execute("ROLLBACK")
                raise
            finally:
                self._queued_token_counts.clear()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, _translated(self.url):
            return list(self._connection().execute(sql, params).fetchall())

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
        if db is None:
            with self.transaction() as tx:
                return self.create_session(
                    title=title, notebook=notebook, system_prompt=system_prompt, model=model,
                    backend=backend, parent_id=parent_id, db=tx,
                )
        import psycopg

        now = time.time()
        for _ in range(SESSION_ID_TRIES):
            session_id = secrets.token_hex(4)
            try:
                with db.transaction():  # a savepoint: an id taken by another user is retried
                    db.execute(
                        "INSERT INTO sessions (id, title, notebook, system_prompt, model, "
                        "backend, parent_id, created, updated) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (session_id, title, notebook, system_prompt, model, backend, parent_id,
                         now, now),
                    )
            except psycopg.errors.UniqueViolation:
                continue
            return Session(
                session_id, title, notebook, system_prompt, model, backend, parent_id, 0, "",
                0, now, now,
            )
        raise StoreError(f"Cannot find a free session id in {self.location}: try again.")

    def get_session(self, key: str) -> Session | None:
        """A session by id (one's own or one shared with one's group), else by exact title
        among one's own (the newest of that title)."""
        rows = self._query(  # one round trip; each branch uses its index
            f"(SELECT {_SESSION_COLUMNS}, 0 AS by_title FROM sessions WHERE id = %s) "
            f"UNION ALL (SELECT {_SESSION_COLUMNS}, 1 FROM sessions WHERE title = %s "
            "AND owner = current_user ORDER BY updated DESC LIMIT 1) "
            "ORDER BY by_title LIMIT 1",
            (key, key),
        )
        return Session(*rows[0][:-1]) if rows else None

    def latest_session_for_notebook(self, notebook: str) -> Session | None:
        rows = self._query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE owner = current_user "
            "AND notebook = %s ORDER BY updated DESC LIMIT 1",
            (notebook,),
        )
        return Session(*rows[0]) if rows else None

    def list_sessions(self, *, notebook: str | None = None, limit: int = 50) -> list[Session]:
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE owner = current_user"
        params: list[Any] = []
        if notebook is not None:
            sql += " AND notebook = %s"
            params.append(notebook)
        rows = self._query(sql + " ORDER BY updated DESC LIMIT %s", [*params, limit])
        return [Session(*r) for r in rows]

    def message_counts(self) -> dict[str, int]:
        rows = self._query(
            "SELECT session_id, COUNT(*) FROM messages WHERE owner = current_user "
            "GROUP BY session_id"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def delete_session(self, session_id: str) -> bool:
        with self._lock:
            self._history.pop(session_id, None)
        with self.transaction() as tx:
            return bool(tx.execute("DELETE FROM sessions WHERE id = %s", (session_id,)).rowcount)

    def set_system_prompt(self, db: Any, session_id: str, system_prompt: str) -> None:
        db.execute(
            "UPDATE sessions SET system_prompt = %s WHERE id = %s", (system_prompt, session_id)
        )

    def set_history(
        self, db: Any, session_id: str, *, start_seq: int, carried_files: str, compacted: bool
    ) -> None:
        db.execute(
            "UPDATE sessions SET history_start_seq = %s, carried_files = %s, "
            "compactions = compactions + %s WHERE id = %s",
            (start_seq, carried_files, 1 if compacted else 0, session_id),
        )

    def share_session(self, session_id: str, role: str) -> None:
        """Let the members of ``role`` read the session (read-only, with its files)."""
        import psycopg

        try:
            with self.transaction() as tx:
                tx.execute(
                    "INSERT INTO session_shares (session_id, grantee, created) "
                    "VALUES (%s, %s::regrole, %s) ON CONFLICT DO NOTHING",
                    (session_id, role, time.time()),
                )
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.errors.UndefinedObject):
                raise StoreError(
                    f"There is no role {role!r} in {self.location}: name a group role the "
                    "database admin created (see docs/team.md)."
                ) from cause
            if isinstance(cause, psycopg.errors.InsufficientPrivilege):
                raise StoreError(
                    f"Session {session_id} is not yours to share: only its owner can."
                ) from cause
            raise

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
        """Append a message inside the caller's transaction; ``seq`` is the next free one.

        The session's row is locked first (``UPDATE``), so writers of one session take
        turns and each ``seq`` follows the last committed one.
        """
        now = time.time()
        # Both statements go in one round trip (a pipeline). The INSERT runs after the
        # UPDATE holds the lock, in a snapshot of its own, so it sees the last committed
        # message; it inserts nothing when the UPDATE found no session of the caller's.
        with db.pipeline():
            db.execute(
                "UPDATE sessions SET updated = %s WHERE id = %s AND owner = current_user",
                (now, session_id),
            )
            inserted = db.execute(
                "INSERT INTO messages (session_id, seq, role, content, rendered, status, "
                "error_kind, error_message, importance, tokens, usage, timings, model, "
                "created) SELECT %s, (SELECT COALESCE(MAX(seq), -1) + 1 FROM messages "
                "WHERE session_id = %s), %s, %s, %s, %s, %s::text, %s::text, "
                "%s::double precision, %s::integer, %s, %s, %s::text, %s::double precision "
                "WHERE EXISTS (SELECT 1 FROM sessions WHERE id = %s "
                "AND owner = current_user) RETURNING id, seq",
                (
                    session_id, session_id, role, content, rendered, status, error_kind,
                    error_message, importance, tokens, json.dumps(usage or {}),
                    json.dumps(timings or {}), model, now, session_id,
                ),
            )
        row = inserted.fetchone()
        if row is None:
            raise StoreError(
                f"Session {session_id} is not yours to write in {self.location} (it is "
                "gone, or shared with you read-only): start a new session."
            )
        message_id, seq = row
        return StoredMessage(
            int(message_id), session_id, int(seq), role, content, rendered, status,
            error_kind, error_message, importance, tokens, usage or {}, timings or {}, model,
            now,
        )

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int | None = None
    ) -> list[StoredMessage]:
        """Messages from ``seq`` ``from_seq`` on (the last ``limit`` of them when given).

        Without ``limit`` the answer comes from a per-session cache topped up with the
        rows stored since the last read, as in the SQLite store.
        """
        import psycopg

        if limit is None:
            with self._lock, _translated(self.url):
                db = self._connection()
                if db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                    cached = self._history.setdefault(session_id, [])
                    after = cached[-1].seq if cached else -1
                    rows = db.execute(
                        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = %s "
                        "AND seq > %s ORDER BY seq",
                        (session_id, after),
                    ).fetchall()
                    cached.extend(_message(r) for r in rows)
                    return cached[bisect.bisect_left(cached, from_seq, key=lambda m: m.seq):]
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = %s AND seq >= %s "
            "ORDER BY seq"
        )
        params: list[Any] = [session_id, from_seq]
        if limit is not None:
            sql = (
                f"SELECT * FROM (SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = %s "
                "AND seq >= %s ORDER BY seq DESC LIMIT %s) newest ORDER BY seq"
            )
            params.append(limit)
        return [_message(r) for r in self._query(sql, params)]

    def get_message(self, message_id: int) -> StoredMessage | None:
        rows = self._query(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s", (message_id,))
        return _message(rows[0]) if rows else None

    def last_message(self, session_id: str) -> StoredMessage | None:
        rows = self._query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = %s "
            "ORDER BY seq DESC LIMIT 1",
            (session_id,),
        )
        return _message(rows[0]) if rows else None

    # -- stored files -----------------------------------------------------------------

    def add_file(self, name: str, data: bytes, *, sha256: str, mime: str) -> StoredFile:
        """Store ``data`` under ``name``; the same name again replaces the bytes."""
        with self.transaction() as tx:
            row = tx.execute(
                "INSERT INTO files (name, data, sha256, size_bytes, mime, created) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (owner, name) DO UPDATE SET "
                "data = excluded.data, sha256 = excluded.sha256, "
                "size_bytes = excluded.size_bytes, mime = excluded.mime, "
                f"created = excluded.created RETURNING {_FILE_COLUMNS}",
                (name, data, sha256, len(data), mime, time.time()),
            ).fetchone()
        return StoredFile(*row)

    def get_file(self, key: str | int) -> StoredFile | None:
        """A stored file by id (an int or all-digit text; one's own or shared with one),
        or by name among one's own."""
        rows: list[tuple[Any, ...]] = []
        if isinstance(key, int) or key.isdigit():
            rows = self._query(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = %s", (int(key),))
        if not rows:
            rows = self._query(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE owner = current_user AND name = %s",
                (str(key),),
            )
        return StoredFile(*rows[0]) if rows else None

    def file_bytes(self, file_id: int) -> bytes:
        rows = self._query("SELECT data FROM files WHERE id = %s", (file_id,))
        if not rows:
            raise StoreError(f"Stored file {file_id} is gone: list them with `%chat stored`.")
        return bytes(rows[0][0])

    def list_files(self) -> list[StoredFile]:
        rows = self._query(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE owner = current_user ORDER BY name"
        )
        return [StoredFile(*r) for r in rows]

    def remove_file(self, key: str | int) -> StoredFile | None:
        found = self.get_file(key)
        if found is None:
            return None
        with self.transaction() as tx:
            removed = tx.execute(
                "DELETE FROM files WHERE id = %s AND owner = current_user", (found.id,)
            ).rowcount
        return found if removed else None

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
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (session_id, kind, name, sha256) DO UPDATE SET forgotten = FALSE",
            (
                session_id, message_id, kind, name, path, sha256, fingerprint, total_tokens,
                kept_tokens, time.time(),
            ),
        )

    def attachments(
        self, session_id: str, *, include_forgotten: bool = False
    ) -> list[AttachmentRecord]:
        sql = (
            "SELECT a.id, a.session_id, a.message_id, m.seq, a.kind, a.name, a.path, "
            "a.sha256, a.fingerprint, a.total_tokens, a.kept_tokens, a.forgotten, a.created "
            "FROM attachments a LEFT JOIN messages m ON m.id = a.message_id "
            "WHERE a.session_id = %s"
        )
        if not include_forgotten:
            sql += " AND NOT a.forgotten"
        rows = self._query(sql + " ORDER BY a.id", (session_id,))
        return [AttachmentRecord(*r) for r in rows]

    def forget_attachment(self, session_id: str, name: str) -> int:
        """Stop re-including a file in this session; returns how many records matched."""
        with self.transaction() as tx:
            return int(tx.execute(
                "UPDATE attachments SET forgotten = TRUE WHERE session_id = %s AND name = %s",
                (session_id, name),
            ).rowcount)

    # -- caches (each user's own: a hit never reveals another user's document) ----------

    def cached_extract(self, sha256: str, version: str) -> Extracted | None:
        rows = self._query(
            "SELECT kind, text, notes, sections FROM extracts "
            "WHERE owner = current_user AND sha256 = %s AND extractor_version = %s",
            (sha256, version),
        )
        if not rows:
            return None
        kind, text, notes, sections = rows[0]
        located = tuple(
            Section(unit, number, start, end, label)
            for unit, number, start, end, label in json.loads(sections or "[]")
        )
        return Extracted(text, kind, tuple(json.loads(notes)), located)

    def cached_path_hash(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        rows = self._query(
            "SELECT sha256 FROM path_hashes WHERE owner = current_user AND path = %s "
            "AND size_bytes = %s AND mtime_ns = %s",
            (path, size_bytes, mtime_ns),
        )
        return str(rows[0][0]) if rows else None

    def cached_token_count(self, sha256: str, tokenizer: str) -> int | None:
        known = self._token_counts.get((sha256, tokenizer))
        if known is not None:
            return known
        rows = self._query(
            "SELECT tokens FROM token_counts WHERE owner = current_user AND sha256 = %s "
            "AND tokenizer = %s",
            (sha256, tokenizer),
        )
        if not rows:
            return None
        self._remember_token_count(sha256, tokenizer, int(rows[0][0]))
        return int(rows[0][0])

    def _remember_token_count(self, sha256: str, tokenizer: str, tokens: int) -> None:
        if len(self._token_counts) >= TOKEN_COUNTS_KEPT:
            self._token_counts.clear()
        self._token_counts[(sha256, tokenizer)] = tokens

    def put_extract(self, db: Any, sha256: str, version: str, extracted: Extracted) -> None:
        located = [[s.unit, s.number, s.start, s.end, s.label] for s in extracted.sections]
        db.execute(
            "INSERT INTO extracts (sha256, extractor_version, kind, text, notes, sections) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (sha256, version, extracted.kind, extracted.text,
             json.dumps(list(extracted.notes)), json.dumps(located) if located else None),
        )

    def put_path_hash(
        self, db: Any, path: str, size_bytes: int, mtime_ns: int, sha256: str
    ) -> None:
        db.execute(
            "INSERT INTO path_hashes (path, size_bytes, mtime_ns, sha256) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (owner, path) DO UPDATE SET "
            "size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, "
            "sha256 = excluded.sha256",
            (path, size_bytes, mtime_ns, sha256),
        )

    def put_token_count(self, db: Any, sha256: str, tokenizer: str, tokens: int) -> None:
        """Queued: written with the transaction's COMMIT (see :meth:`transaction`)."""
        self._queued_token_counts.append((sha256, tokenizer, tokens))
        self._remember_token_count(sha256, tokenizer, tokens)  # right even if rolled back

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
        """One's own past messages relevant to ``query``, best first.

        Words go through ``word_hits`` (the GIN index), vectors through the HNSW index
        of their size (cosine), both in the server; the rankings are fused here.
        """
        search_filter = search_filter or SearchFilter()
        candidates = max(CANDIDATES_MIN, limit * 4)
        lexical = self._word_ranking(query_terms(query), search_filter, candidates)
        vector: list[tuple[int, float]] = []
        if query_vector is not None and vector_model:
            vector = self._vector_ranking(query_vector, vector_model, search_filter, candidates)
            if cosine_floor is not None:
                found_by_words = {message_id for message_id, _ in lexical}
                vector = [
                    (message_id, similarity) for message_id, similarity in vector
                    if similarity >= cosine_floor or message_id in found_by_words
                ]
        fused = fuse(lexical, vector)
        found = {h.message_id: h for h in self.hits([f.message_id for f in fused[: limit * 2]])}
        hits: list[Hit] = []
        for place in fused:
            hit = found.get(place.message_id)
            if hit is None:
                continue
            hits.append(Hit(
                hit.message_id, hit.session_id, hit.session_title, hit.seq, hit.role,
                hit.content, hit.created, place.score, place.lexical_rank, place.vector_rank,
                place.similarity,
            ))
            if len(hits) >= limit:
                break
        return hits

    def _word_ranking(
        self, terms: Sequence[str], search_filter: SearchFilter, limit: int
    ) -> list[tuple[int, float]]:
        """Messages holding any of ``terms`` (stemmed), the rarest words weighing most."""
        if not terms:
            return []
        excluded = search_filter.exclude_message_ids
        rows = self._query(
            "SELECT id, rank FROM word_hits(%s::text[], %s, %s, %s, %s, %s, %s)",
            [
                list(terms), limit + len(excluded), search_filter.session_id,
                search_filter.notebook, search_filter.exclude_session_id, search_filter.since,
                search_filter.until,
            ],
        )
        return [(int(i), float(r)) for i, r in rows if int(i) not in excluded][:limit]

    def _vector_ranking(
        self,
        query_vector: Sequence[float],
        model: str,
        search_filter: SearchFilter,
        limit: int,
    ) -> list[tuple[int, float]]:
        """The messages nearest ``query_vector`` by cosine (a message scores its best
        chunk), found with the HNSW index of the vector's size."""
        import numpy as np

        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dim = int(query.shape[0])
        if dim == 0 or not np.any(query):
            return []
        where, params = _filter_sql(search_filter)
        distance = f"e.vector::vector({dim}) <=> %s::vector({dim})"
        take = limit * 4 + len(search_filter.exclude_message_ids)
        with self.transaction() as tx:
            tx.execute(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")
            rows = tx.execute(
                f"SELECT e.message_id, 1 - ({distance}) AS similarity FROM embeddings e "
                "JOIN messages m ON m.id = e.message_id "
                f"WHERE e.owner = current_user AND e.model = %s AND e.dim = %s AND {where} "
                f"ORDER BY {distance} LIMIT %s",
                [query, model, dim, *params, query, take],
            ).fetchall()
        best: dict[int, float] = {}
        for message_id, similarity in rows:
            if int(message_id) not in search_filter.exclude_message_ids:
                best.setdefault(int(message_id), float(similarity))
        return list(best.items())[:limit]

    def browse(self, search_filter: SearchFilter, *, limit: int = 10) -> list[Hit]:
        """One's own messages within the filter: the most important first, then newest."""
        where, params = _filter_sql(search_filter)
        excluded = search_filter.exclude_message_ids
        rows = self._query(
            "SELECT m.id FROM messages m WHERE m.owner = current_user AND m.content <> '' "
            f"AND {where} ORDER BY m.importance DESC, m.created DESC LIMIT %s",
            [*params, limit + len(excluded)],
        )
        ids = [int(r[0]) for r in rows if int(r[0]) not in excluded][:limit]
        return [
            Hit(h.message_id, h.session_id, h.session_title, h.seq, h.role, h.content,
                h.created, 1.0 / (RRF_K + rank))
            for rank, h in enumerate(self.hits(ids), start=1)
        ]

    def hits(self, message_ids: Sequence[int]) -> list[Hit]:
        if not message_ids:
            return []
        rows = self._query(
            "SELECT m.id, m.session_id, s.title, m.seq, m.role, m.content, m.created "
            "FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ANY(%s)",
            (list(message_ids),),
        )
        found = {int(r[0]): r for r in rows}
        return [
            Hit(i, str(r[1]), r[2] or "", int(r[3]), str(r[4]), str(r[5]), float(r[6]), 0.0)
            for i in message_ids
            if (r := found.get(i)) is not None
        ]

    # -- embeddings -------------------------------------------------------------------

    def count_unembedded(self, model: str) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM messages m WHERE m.owner = current_user AND m.content <> '' "
            "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.message_id = m.id "
            "AND e.model = %s)",
            (model,),
        )
        return int(rows[0][0])

    def unembedded(
        self, model: str, limit: int, skip: frozenset[int] = frozenset()
    ) -> list[MessageText]:
        rows = self._query(
            "SELECT m.id, m.content FROM messages m WHERE m.owner = current_user "
            "AND m.content <> '' AND NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.message_id = m.id AND e.model = %s) ORDER BY m.id DESC LIMIT %s",
            (model, limit + len(skip)),
        )
        found = [MessageText(int(r[0]), str(r[1])) for r in rows]
        return [m for m in found if m.message_id not in skip][:limit]

    def count_vectors(self, model: str) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM embeddings WHERE owner = current_user AND model = %s",
            (model,),
        )
        return int(rows[0][0])

    def add_vectors(self, db: Any, vectors: Sequence[MessageVector]) -> int:
        import numpy as np

        now = time.time()
        rows = [
            (v.message_id, v.model, v.chunk, len(v.vector),
             np.asarray(v.vector, dtype=np.float32), now, v.message_id)
            for v in vectors
        ]
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
                "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS "
                "(SELECT 1 FROM messages WHERE id = %s AND owner = current_user) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
        return len({row[0] for row in rows})


    # -- copying a whole history (``nbchat db copy``; not part of the protocol) --------

    def import_session(self, db: Any, session: Session) -> bool:
        """Add ``session`` as it is (id, times, compaction state); False if it exists."""
        return bool(db.execute(
            "INSERT INTO sessions (id, title, notebook, system_prompt, model, backend, "
            "parent_id, history_start_seq, carried_files, compactions, created, updated) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (session.id, session.title, session.notebook, session.system_prompt,
             session.model, session.backend, session.parent_id, session.history_start_seq,
             session.carried_files, session.compactions, session.created, session.updated),
        ).rowcount)

    def import_message(self, db: Any, message: StoredMessage) -> int:
        """Add ``message`` with its ``seq`` and times; its id here (the existing one's if
        the session already has that ``seq``)."""
        db.execute(
            "INSERT INTO messages (session_id, seq, role, content, rendered, status, "
            "error_kind, error_message, importance, tokens, usage, timings, model, created) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (message.session_id, message.seq, message.role, message.content,
             message.rendered, message.status, message.error_kind, message.error_message,
             message.importance, message.tokens, json.dumps(message.usage),
             json.dumps(message.timings), message.model, message.created),
        )
        row = db.execute(
            "SELECT id FROM messages WHERE session_id = %s AND seq = %s",
            (message.session_id, message.seq),
        ).fetchone()
        return int(row[0])

    def cached_entries(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Every cache row of one's own (see the SQLite store's)."""
        for sha, version in self._query(
            "SELECT sha256, extractor_version FROM extracts WHERE owner = current_user"
        ):
            found = self.cached_extract(sha, version)
            if found is not None:
                yield "extract", (sha, version, found)
        for row in self._query(
            "SELECT path, size_bytes, mtime_ns, sha256 FROM path_hashes WHERE owner = current_user"
        ):
            yield "path", tuple(row)
        for row in self._query(
            "SELECT sha256, tokenizer, tokens FROM token_counts WHERE owner = current_user"
        ):
            yield "tokens", tuple(row)

    def stored_vectors(self, message_ids: Sequence[int]) -> list[MessageVector]:
        """The vectors of these messages, every model."""
        if not message_ids:
            return []
        rows = self._query(
            "SELECT message_id, model, chunk, vector FROM embeddings "
            "WHERE owner = current_user AND message_id = ANY(%s) ORDER BY id",
            (list(message_ids),),
        )
        return [
            MessageVector(int(r[0]), str(r[1]), int(r[2]), [float(x) for x in _floats(r[3])])
            for r in rows
        ]


    # -- file chunks (each user's own, like the caches) ----------------------------------

    def has_chunks(self, sha256: str, version: str) -> bool:
        return bool(self._query(
            "SELECT 1 FROM file_chunks WHERE owner = current_user AND sha256 = %s "
            "AND extractor_version = %s LIMIT 1",
            (sha256, version),
        ))

    def put_chunks(self, db: Any, sha256: str, version: str, chunks: Sequence[ChunkRow]) -> None:
        """Each chunk's place in the user's own extraction, and its words (from the
        extraction: the index keeps no text of its own)."""
        texts = chunk_slices(_own_extract_text(db, sha256, version), sha256, version, chunks)
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO file_chunks "
                "(sha256, extractor_version, idx, start, stop, label, words) "
                "VALUES (%s, %s, %s, %s, %s, %s, to_tsvector('english', %s)) "
                "ON CONFLICT DO NOTHING",
                [(sha256, version, c.index, c.start, c.end, c.label, text)
                 for c, text in zip(chunks, texts)],
            )

    def rank_chunks(
        self, sha256: str, version: str, terms: Sequence[str], limit: int
    ) -> list[tuple[int, float]]:
        """``ts_rank`` of the file's chunks for the terms OR'ed (one user's rows)."""
        words = [w for w in ("".join(ch for ch in t if ch.isalnum()) for t in terms) if w]
        if not words:
            return []
        rows = self._query(
            "SELECT idx, ts_rank(words, q) AS rank "
            "FROM file_chunks, to_tsquery('english', %s) AS q "
            "WHERE owner = current_user AND sha256 = %s AND extractor_version = %s "
            "AND words @@ q ORDER BY rank DESC, idx LIMIT %s",
            (" | ".join(words), sha256, version, limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def unembedded_chunks(
        self, model: str, limit: int, skip: frozenset[int] = frozenset()
    ) -> list[ChunkText]:
        with self._lock, _translated(self.url):
            db = self._connection()
            places = db.execute(
                "SELECT c.id, c.sha256, c.extractor_version, c.start, c.stop "
                "FROM file_chunks c WHERE c.owner = current_user "
                "AND NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id "
                "AND v.model = %s) AND NOT (c.id = ANY(%s)) ORDER BY c.id DESC LIMIT %s",
                (model, sorted(skip), limit),
            ).fetchall()
            return texts_from_extracts([tuple(r) for r in places], partial(_own_extract_text, db))

    def add_chunk_vectors(
        self, db: Any, model: str, vectors: Sequence[tuple[int, Sequence[float]]]
    ) -> int:
        import numpy as np

        added = 0
        for chunk_id, vector in vectors:
            added += db.execute(
                "INSERT INTO chunk_vectors (chunk_id, model, dim, vector) "
                "SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM file_chunks WHERE id = %s) "
                "ON CONFLICT DO NOTHING",
                (chunk_id, model, len(vector), np.asarray(vector, dtype=np.float32), chunk_id),
            ).rowcount
        return added

    def rank_chunk_vectors(
        self, sha256: str, version: str, model: str, vector: Sequence[float], limit: int
    ) -> list[tuple[int, float]]:
        import numpy as np

        rows = self._query(
            "SELECT c.idx, 1 - (v.vector <=> %s) AS cosine FROM chunk_vectors v "
            "JOIN file_chunks c ON c.id = v.chunk_id WHERE c.owner = current_user "
            "AND c.sha256 = %s AND c.extractor_version = %s AND v.model = %s AND v.dim = %s "
            "ORDER BY cosine DESC, c.idx LIMIT %s",
            (np.asarray(vector, dtype=np.float32), sha256, version, model, len(vector), limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def record_sent_chunks(
        self, db: Any, session_id: str, message_id: int, sha256: str, indexes: Sequence[int]
    ) -> None:
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO sent_chunks (session_id, message_id, sha256, idx) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(session_id, message_id, sha256, index) for index in indexes],
            )

    def sent_chunks(self, session_id: str, *, from_seq: int = 0) -> dict[str, frozenset[int]]:
        rows = self._query(
            "SELECT c.sha256, c.idx FROM sent_chunks c JOIN messages m ON m.id = c.message_id "
            "WHERE c.session_id = %s AND m.seq >= %s",
            (session_id, from_seq),
        )
        return indexes_by_file(rows)


def _own_extract_text(db: Any, sha256: str, version: str) -> str | None:
    """The connected user's extraction of this content (NUL characters as written)."""
    row = db.execute(
        "SELECT text FROM extracts WHERE owner = current_user AND sha256 = %s "
        "AND extractor_version = %s",
        (sha256, version),
    ).fetchone()
    return None if row is None else str(row[0])


def _filter_sql(search_filter: SearchFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """The conditions of ``search_filter`` on the messages table (``alias``)."""
    conditions: list[str] = []
    params: list[Any] = []
    if search_filter.session_id is not None:
        conditions.append(f"{alias}.session_id = %s")
        params.append(search_filter.session_id)
    if search_filter.notebook is not None:
        conditions.append(
            f"{alias}.session_id IN (SELECT id FROM sessions WHERE owner = current_user "
            "AND notebook = %s)"
        )
        params.append(search_filter.notebook)
    if search_filter.exclude_session_id is not None:
        conditions.append(f"{alias}.session_id <> %s")
        params.append(search_filter.exclude_session_id)
    if search_filter.since is not None:
        conditions.append(f"{alias}.created >= %s")
        params.append(search_filter.since)
    if search_filter.until is not None:
        conditions.append(f"{alias}.created < %s")
        params.append(search_filter.until)
    return (" AND ".join(conditions) or "TRUE"), params


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """psycopg's errors as :class:`StoreError`: a lost server named as such."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreError(
            f"Lost the PostgreSQL server of {redact_url(url)} "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else 'no answer'}): "
            "this step was not stored; the next one reconnects. Check the server is running."
        ) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreError(
            f"The database {redact_url(url)} refused this change "
            f"({str(exc).strip().splitlines()[0]}): a session shared with you is read-only, "
            "and only its owner can change it."
        ) from exc
    except psycopg.Error as exc:
        raise StoreError(
            f"The PostgreSQL database {redact_url(url)} failed: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from exc


def _floats(value: Any) -> Any:
    """A stored vector's numbers (pgvector gives a ``Vector``, or an array when typed)."""
    return value.to_list() if hasattr(value, "to_list") else value


def _message(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        int(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4]), str(row[5]),
        str(row[6]), row[7], row[8], float(row[9]), row[10], json.loads(row[11] or "{}"),
        json.loads(row[12] or "{}"), row[13], float(row[14]),
    )
