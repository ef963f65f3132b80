"""Search over the SQLite store: FTS5 (BM25) words plus cosine over stored vectors.

The two rankings are fused by :func:`nbchat.core.ranking.fuse`. Only vectors of the
asked embedding model are used; with none (no embeddings server, or nothing embedded
yet) the search is word-based alone. A word hit shares a topic word (not a stopword)
with the query; a message found by meaning alone must reach the caller's cosine floor,
since the fused score has no absolute scale.

:class:`VectorIndex` loads the vectors of one model into one numpy matrix once and then
only appends the rows stored since (the ``embeddings`` ids only grow), so a query never
rereads the table. It lives inside :class:`~nbchat.core.sqlite_store.SqliteStore`: no
caller loads vectors.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from nbchat.core.ranking import RRF_K, fuse, query_terms
from nbchat.core.store import Hit, SearchFilter

__all__ = [
    "VectorIndex",
    "search_messages",
    "browse_messages",
    "hits_by_id",
    "lexical_ranking",
    "filter_sql",
    "vector_to_blob",
]

LOAD_BATCH_ROWS = 4096
BLAS_MIN_ROWS = 50_000
CANDIDATES_MIN = 50


def vector_to_blob(vector: Any) -> bytes:
    """A vector as stored: little-endian float32."""
    import numpy as np

    return bytes(np.asarray(vector, dtype="<f4").tobytes())


def filter_sql(search_filter: SearchFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """The SQL conditions of ``search_filter`` on the messages table (``alias``)."""
    conditions: list[str] = []
    params: list[Any] = []
    if search_filter.session_id is not None:
        conditions.append(f"{alias}.session_id = ?")
        params.append(search_filter.session_id)
    if search_filter.notebook is not None:
        conditions.append(f"{alias}.session_id IN (SELECT id FROM sessions WHERE notebook = ?)")
        params.append(search_filter.notebook)
    if search_filter.exclude_session_id is not None:
        conditions.append(f"{alias}.session_id != ?")
        params.append(search_filter.exclude_session_id)
    if search_filter.since is not None:
        conditions.append(f"{alias}.created >= ?")
        params.append(search_filter.since)
    if search_filter.until is not None:
        conditions.append(f"{alias}.created < ?")
        params.append(search_filter.until)
    return (" AND ".join(conditions) or "1"), params


class VectorIndex:
    """The vectors of one embedding model, as one normalised float32 matrix.

    :meth:`refresh` appends the rows stored since the last call; the buffer grows by
    doubling, so loading is linear overall. Vectors of another model, or of another
    dimension than the first one loaded, are ignored. Each row keeps its message's time
    and session (read when the row is loaded: they never change), so the usual filters
    are numpy masks rather than SQL.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.dim: int | None = None
        self.last_row_id = 0
        self.count = 0
        self._matrix: Any = None
        self._message_ids: Any = None
        self._created: Any = None
        self._sessions: Any = None
        self._session_codes: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def matrix(self) -> Any:
        return None if self._matrix is None else self._matrix[: self.count]

    @property
    def message_ids(self) -> Any:
        return None if self._message_ids is None else self._message_ids[: self.count]

    def refresh(self, connection: sqlite3.Connection, lock: Any = None) -> int:
        """Load the rows added since the last refresh; return how many."""
        sql = (
            "SELECT e.id, e.message_id, e.dim, e.vector, m.created, m.session_id "
            "FROM embeddings e JOIN messages m ON m.id = e.message_id "
            "WHERE e.model = ? AND e.id > ? ORDER BY e.id LIMIT ?"
        )
        loaded = 0
        with self._lock:
            while True:
                with lock if lock is not None else contextlib.nullcontext():
                    rows = connection.execute(
                        sql, (self.model, self.last_row_id, LOAD_BATCH_ROWS)
                    ).fetchall()
                if not rows:
                    return loaded
                self.last_row_id = int(rows[-1][0])
                loaded += self._load_rows(rows)
                if len(rows) < LOAD_BATCH_ROWS:
                    return loaded

    def _load_rows(self, rows: Sequence[Any]) -> int:
        import numpy as np

        if self.dim is None:
            self.dim = int(rows[0][2])
        dim = self.dim
        usable = [r for r in rows if int(r[2]) == dim and len(r[3]) == 4 * dim]
        if not usable:
            return 0
        block = np.frombuffer(b"".join(r[3] for r in usable), dtype="<f4")
        block = block.reshape(len(usable), dim).astype(np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block /= np.where(norms > 0, norms, 1.0)
        count = len(usable)
        ids = np.fromiter((int(r[1]) for r in usable), dtype=np.int64, count=count)
        created = np.fromiter((float(r[4]) for r in usable), dtype=np.float64, count=count)
        codes = self._session_codes
        sessions = np.fromiter(
            (codes.setdefault(r[5], len(codes)) for r in usable), dtype=np.int32, count=count
        )
        self._append(block, ids, created, sessions)
        return count

    def _append(self, block: Any, ids: Any, created: Any, sessions: Any) -> None:
        import numpy as np

        needed = self.count + len(block)
        if self._matrix is None or needed > len(self._matrix):
            capacity = max(needed, 2 * (len(self._matrix) if self._matrix is not None else 0), 256)
            grown: tuple[Any, Any, Any, Any] = (
                np.empty((capacity, block.shape[1]), dtype=np.float32),
                np.empty(capacity, dtype=np.int64),
                np.empty(capacity, dtype=np.float64),
                np.empty(capacity, dtype=np.int32),
            )
            if self._matrix is not None:
                old = (self._matrix, self._message_ids, self._created, self._sessions)
                for new_array, old_array in zip(grown, old):
                    new_array[: self.count] = old_array[: self.count]
            self._matrix, self._message_ids, self._created, self._sessions = grown
        span = slice(self.count, needed)
        self._matrix[span] = block
        self._message_ids[span] = ids
        self._created[span] = created
        self._sessions[span] = sessions
        self.count = needed

    def _mask(self, search_filter: SearchFilter | None, allowed_ids: Any) -> Any:
        """Rows the filter keeps (None: all of them)."""
        import numpy as np

        n = self.count
        mask = None

        def narrow(keep: Any) -> None:
            nonlocal mask
            mask = keep if mask is None else mask & keep

        if allowed_ids is not None:
            narrow(np.isin(self._message_ids[:n], allowed_ids))
        if search_filter is None:
            return mask
        codes = self._session_codes
        if search_filter.session_id is not None:
            code = codes.get(search_filter.session_id, -1)
            narrow(self._sessions[:n] == code)
        if search_filter.exclude_session_id is not None:
            code = codes.get(search_filter.exclude_session_id, -1)
            narrow(self._sessions[:n] != code)
        if search_filter.since is not None:
            narrow(self._created[:n] >= search_filter.since)
        if search_filter.until is not None:
            narrow(self._created[:n] < search_filter.until)
        if search_filter.exclude_message_ids:
            excluded = np.fromiter(search_filter.exclude_message_ids, dtype=np.int64)
            narrow(~np.isin(self._message_ids[:n], excluded))
        return mask

    def nearest(
        self,
        query_vector: Any,
        limit: int,
        search_filter: SearchFilter | None = None,
        *,
        allowed_ids: Any = None,
    ) -> list[tuple[int, float]]:
        """The ``limit`` most similar messages as (message id, cosine), best first.

        A message with several chunks scores its best chunk. ``allowed_ids`` (an array
        of message ids) narrows further, for filters the index cannot apply itself.
        """
        import numpy as np

        with self._lock:
            if self.count == 0 or self.dim is None:
                return []
            query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
            if query.shape[0] != self.dim:
                return []
            norm = float(np.linalg.norm(query))
            if norm == 0.0:
                return []
            query = query / norm
            if self.count <= BLAS_MIN_ROWS:
                # A plain loop: BLAS threads cost milliseconds to wake on a busy machine
                # (a model server on the same cores), far more than the product itself.
                similarities = np.einsum("ij,j->i", self.matrix, query)
            else:
                similarities = self.matrix @ query
            ids = self.message_ids
            mask = self._mask(search_filter, allowed_ids)
            if mask is not None:
                similarities = np.where(mask, similarities, -np.inf)
            found: dict[int, float] = {}
            take = min(len(similarities), max(limit * 4, limit + 8))
            while True:
                top = np.argpartition(-similarities, take - 1)[:take]
                top = top[np.argsort(-similarities[top], kind="stable")]
                found.clear()
                for row in top:
                    score = float(similarities[row])
                    if score == -np.inf:
                        break
                    found.setdefault(int(ids[row]), score)
                    if len(found) >= limit:
                        break
                if len(found) >= limit or take >= len(similarities):
                    break
                take = min(len(similarities), take * 4)
            return list(found.items())[:limit]


def lexical_ranking(
    connection: sqlite3.Connection,
    terms: Sequence[str],
    search_filter: SearchFilter,
    limit: int,
) -> list[tuple[int, float]]:
    """Messages matching any of ``terms``, best BM25 first, as (message id, bm25)."""
    if not terms:
        return []
    where, params = filter_sql(search_filter, "m")
    excluded = search_filter.exclude_message_ids
    if _has_fts(connection):
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        sql = (
            "SELECT m.id, bm25(messages_fts) AS rank FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid "
            f"WHERE messages_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
        )
        rows = connection.execute(sql, [match, *params, limit + len(excluded)]).fetchall()
        ranked = [(int(r[0]), float(r[1])) for r in rows]
    else:
        ranked = _like_ranking(connection, terms, where, params, limit + len(excluded))
    return [(i, s) for i, s in ranked if i not in excluded][:limit]


def _like_ranking(
    connection: sqlite3.Connection, terms: Sequence[str], where: str, params: list[Any], limit: int
) -> list[tuple[int, float]]:
    """Without FTS5: messages containing the most terms first (a plain fallback)."""
    hits = " + ".join("(instr(lower(m.content), ?) > 0)" for _ in terms)
    sql = (
        f"SELECT m.id, ({hits}) AS n FROM messages m WHERE {where} AND ({hits}) > 0 "
        "ORDER BY n DESC, m.id DESC LIMIT ?"
    )
    lowered = [t.lower() for t in terms]
    rows = connection.execute(sql, [*lowered, *params, *lowered, limit]).fetchall()
    return [(int(r[0]), -float(r[1])) for r in rows]


def _has_fts(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    return row is not None


def search_messages(
    connection: sqlite3.Connection,
    query: str,
    *,
    limit: int = 10,
    search_filter: SearchFilter | None = None,
    index: VectorIndex | None = None,
    query_vector: Any = None,
    lock: Any = None,
    cosine_floor: float | None = None,
) -> list[Hit]:
    """Past messages relevant to ``query``, best first (see the module docstring).

    ``index`` and ``query_vector`` add the vector ranking; without them the search is
    word-based. ``cosine_floor`` (see :mod:`~nbchat.memory.floors`) is the least cosine
    at which a message the words did not find is a hit: below it, the vectors only
    order the word hits. ``lock`` guards ``connection`` when it is shared between threads.
    """
    search_filter = search_filter or SearchFilter()
    guard = lock if lock is not None else contextlib.nullcontext()
    candidates = max(CANDIDATES_MIN, limit * 4)
    with guard:
        lexical = lexical_ranking(connection, query_terms(query), search_filter, candidates)
        use_vectors = index is not None and query_vector is not None
        allowed = None
        if use_vectors and search_filter.notebook is not None:
            allowed = _ids(connection, search_filter)
    vector: list[tuple[int, float]] = []
    if use_vectors:
        assert index is not None
        index.refresh(connection, lock)
        vector = index.nearest(query_vector, candidates, search_filter, allowed_ids=allowed)
        if cosine_floor is not None:
            found_by_words = {message_id for message_id, _ in lexical}
            vector = [
                (message_id, similarity)
                for message_id, similarity in vector
                if similarity >= cosine_floor or message_id in found_by_words
            ]
    fused = fuse(lexical, vector)
    rows = _messages_by_id(connection, [f.message_id for f in fused[: limit * 2]], lock)
    hits: list[Hit] = []
    for place in fused:
        row = rows.get(place.message_id)
        if row is None:
            continue  # deleted since it was indexed, or beyond the first slice
        hits.append(
            Hit(
                message_id=place.message_id,
                session_id=row["session_id"],
                session_title=row["title"] or "",
                seq=int(row["seq"]),
                role=row["role"],
                content=row["content"],
                created=float(row["created"]),
                score=place.score,
                lexical_rank=place.lexical_rank,
                vector_rank=place.vector_rank,
                similarity=place.similarity,
            )
        )
        if len(hits) >= limit:
            break
    return hits


def browse_messages(
    connection: sqlite3.Connection,
    search_filter: SearchFilter,
    *,
    limit: int = 10,
    lock: Any = None,
) -> list[Hit]:
    """Messages within the filter with no query: the most important first, then newest.

    Answers "what did we discuss yesterday?", where the time is the whole question.
    """
    where, params = filter_sql(search_filter, "m")
    excluded = search_filter.exclude_message_ids
    sql = (
        "SELECT m.id FROM messages m WHERE m.content != '' AND " + where
        + " ORDER BY m.importance DESC, m.created DESC LIMIT ?"
    )
    with lock if lock is not None else contextlib.nullcontext():
        rows = connection.execute(sql, [*params, limit + len(excluded)]).fetchall()
    ids = [int(r[0]) for r in rows if int(r[0]) not in excluded][:limit]
    found = _messages_by_id(connection, ids, lock)
    hits = []
    for rank, message_id in enumerate(ids, start=1):
        row = found.get(message_id)
        if row is not None:
            hits.append(
                Hit(
                    message_id, row["session_id"], row["title"] or "", int(row["seq"]),
                    row["role"], row["content"], float(row["created"]), 1.0 / (RRF_K + rank),
                )
            )
    return hits


def hits_by_id(connection: sqlite3.Connection, ids: Sequence[int], lock: Any = None) -> list[Hit]:
    """The messages ``ids`` as hits, in the order given (missing ones left out)."""
    found = _messages_by_id(connection, ids, lock)
    return [
        Hit(i, r["session_id"], r["title"] or "", int(r["seq"]), r["role"], r["content"],
            float(r["created"]), 0.0)
        for i in ids
        if (r := found.get(i)) is not None
    ]


def _ids(connection: sqlite3.Connection, search_filter: SearchFilter) -> Any:
    import numpy as np

    where, params = filter_sql(search_filter, "m")
    rows = connection.execute(f"SELECT m.id FROM messages m WHERE {where}", params).fetchall()
    return np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))


def _messages_by_id(
    connection: sqlite3.Connection, ids: Iterable[int], lock: Any
) -> dict[int, dict[str, Any]]:
    """The messages ``ids`` with their session's title, by id (whatever the row factory)."""
    wanted = list(ids)
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    sql = (
        "SELECT m.id, m.session_id, m.seq, m.role, m.content, m.created, s.title "
        f"FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id IN ({marks})"
    )
    with lock if lock is not None else contextlib.nullcontext():
        rows = connection.execute(sql, wanted).fetchall()
    names = ("id", "session_id", "seq", "role", "content", "created", "title")
    return {int(r[0]): dict(zip(names, tuple(r))) for r in rows}
