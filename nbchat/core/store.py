"""The conversation store: the records it holds and the :class:`Store` protocol.

Everything nbchat keeps between turns goes through this protocol: sessions, messages,
stored files, attachment records, the extraction/token caches, the search over past
messages, and their embeddings. Callers never see SQL or a database connection.
:mod:`nbchat.core.sqlite_store` implements it on one SQLite file, and
:func:`nbchat.core.storage.open_store` opens it; a second store (a server database,
say) is one more module implementing the same methods, plus its migrations.

Writes that belong together happen inside one :meth:`Store.transaction`; the methods
that write take the transaction handle it yields (an opaque token to the caller) as
their first argument, so a turn step lands whole or not at all. Reads need none.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from nbchat.core.extractors.record import Extracted

__all__ = [
    "Store",
    "Transaction",
    "Session",
    "StoredMessage",
    "StoredFile",
    "AttachmentRecord",
    "Hit",
    "SearchFilter",
    "MessageText",
    "MessageVector",
    "ChunkRow",
    "ChunkText",
]


class Transaction(Protocol):
    """The handle of one open write transaction: callers only pass it back to the store."""


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


@dataclass(frozen=True)
class Hit:
    """One past message found by a search, with where and when it was said.

    ``score`` orders hits (higher first); ``lexical_rank`` and ``vector_rank`` say which
    ranking found it (1-based), ``similarity`` is its cosine when vectors found it.
    """

    message_id: int
    session_id: str
    session_title: str
    seq: int
    role: str
    content: str
    created: float
    score: float
    lexical_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None

    def snippet(self, terms: Sequence[str] = (), width_chars: int = 200) -> str:
        """A one-line excerpt around the first query word found, else the start."""
        text = " ".join(self.content.split())
        if len(text) <= width_chars:
            return text
        lowered = text.lower()
        at = -1
        for term in terms:
            at = lowered.find(term.lower())
            if at >= 0:
                break
        start = max(0, at - width_chars // 3) if at >= 0 else 0
        end = min(len(text), start + width_chars)
        start = max(0, end - width_chars)
        piece = text[start:end]
        return ("…" if start else "") + piece + ("…" if end < len(text) else "")


@dataclass(frozen=True)
class SearchFilter:
    """Which messages a search may return.

    ``session_id`` keeps one session; ``exclude_session_id`` leaves one out; ``since`` and
    ``until`` bound the time the message was stored (Unix seconds, ``until`` exclusive);
    ``exclude_message_ids`` leaves out messages (those already in the prompt, say);
    ``notebook`` keeps the sessions of one notebook.
    """

    session_id: str | None = None
    notebook: str | None = None
    exclude_session_id: str | None = None
    since: float | None = None
    until: float | None = None
    exclude_message_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class MessageText:
    """A message's id and text, as the embedder reads them."""

    message_id: int
    content: str


@dataclass(frozen=True)
class MessageVector:
    """One embedding of one chunk of a message, by one model."""

    message_id: int
    model: str
    chunk: int
    vector: Sequence[float]


@dataclass(frozen=True)
class ChunkRow:
    """One chunk of a file's extracted text, as the chunk index stores it
    (:mod:`nbchat.core.chunks`): its place in the text, its label, its text."""

    index: int
    start: int
    end: int
    label: str
    text: str


@dataclass(frozen=True)
class ChunkText:
    """A stored chunk's row id and text, as the embedder reads them."""

    chunk_id: int
    text: str


class Store(Protocol):
    """What nbchat asks of a conversation store (see the module docstring)."""

    @property
    def location(self) -> str:
        """Where the data lives, in words for messages (a path, a server)."""
        ...

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """One write transaction: all of it lands, or none (a crash included)."""
        ...

    def reopen(self) -> "Store":
        """A second, independent connection to the same data (for a worker thread)."""
        ...

    # -- sessions -------------------------------------------------------------------------

    def create_session(
        self,
        *,
        title: str = "",
        notebook: str | None = None,
        system_prompt: str = "",
        model: str | None = None,
        backend: str | None = None,
        parent_id: str | None = None,
        db: Transaction | None = None,
    ) -> Session:
        """A new session; pass ``db`` to create it inside a running transaction."""
        ...

    def get_session(self, key: str) -> Session | None:
        """A session by id, else by exact title (the newest of that title)."""
        ...

    def latest_session_for_notebook(self, notebook: str) -> Session | None: ...

    def list_sessions(self, *, notebook: str | None = None, limit: int = 50) -> list[Session]:
        """Newest first."""
        ...

    def message_counts(self) -> dict[str, int]:
        """Messages per session id."""
        ...

    def delete_session(self, session_id: str) -> bool: ...

    def set_system_prompt(self, db: Transaction, session_id: str, system_prompt: str) -> None: ...

    def set_history(
        self,
        db: Transaction,
        session_id: str,
        *,
        start_seq: int,
        carried_files: str,
        compacted: bool,
    ) -> None:
        """Where the session's replayed history starts, and the files carried past it;
        ``compacted`` counts one more compaction."""
        ...

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        db: Transaction,
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
        """Append a message inside ``db``; its ``seq`` is the session's next free one."""
        ...

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int | None = None
    ) -> list[StoredMessage]:
        """Messages from ``seq`` ``from_seq`` on (the last ``limit`` of them when given)."""
        ...

    # -- stored files ---------------------------------------------------------------------

    def add_file(self, name: str, data: bytes, *, sha256: str, mime: str) -> StoredFile:
        """Store ``data`` under ``name``; the same name again replaces the bytes."""
        ...

    def get_file(self, key: str | int) -> StoredFile | None:
        """A stored file by id (an int or all-digit text) or by name."""
        ...

    def file_bytes(self, file_id: int) -> bytes: ...

    def list_files(self) -> list[StoredFile]: ...

    def remove_file(self, key: str | int) -> StoredFile | None: ...

    # -- attachments ----------------------------------------------------------------------

    def record_attachment(
        self,
        db: Transaction,
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
        """Once per (session, kind, name, content); re-attaching un-forgets."""
        ...

    def attachments(
        self, session_id: str, *, include_forgotten: bool = False
    ) -> list[AttachmentRecord]: ...

    def forget_attachment(self, session_id: str, name: str) -> int:
        """Stop re-including a file in this session; returns how many records matched."""
        ...

    # -- caches ---------------------------------------------------------------------------

    def cached_extract(self, sha256: str, version: str) -> Extracted | None: ...

    def cached_path_hash(self, path: str, size_bytes: int, mtime_ns: int) -> str | None: ...

    def cached_token_count(self, sha256: str, tokenizer: str) -> int | None: ...

    def put_extract(self, db: Transaction, sha256: str, version: str, extracted: Extracted) -> None: ...

    def put_path_hash(
        self, db: Transaction, path: str, size_bytes: int, mtime_ns: int, sha256: str
    ) -> None: ...

    def put_token_count(self, db: Transaction, sha256: str, tokenizer: str, tokens: int) -> None: ...

    # -- search ---------------------------------------------------------------------------

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
        """Past messages relevant to ``query``, best first.

        Words (full-text) and, given ``query_vector``, the stored vectors of
        ``vector_model`` rank the messages; the two rankings are fused by reciprocal
        rank (:func:`nbchat.core.ranking.fuse`). A message found by its vector alone
        must reach ``cosine_floor`` when one is given.
        """
        ...

    def browse(self, search_filter: SearchFilter, *, limit: int = 10) -> list[Hit]:
        """Messages within the filter with no query: the most important first, then newest."""
        ...

    def hits(self, message_ids: Sequence[int]) -> list[Hit]:
        """The messages ``message_ids`` as hits, in the order given (missing ones left out)."""
        ...

    # -- embeddings -----------------------------------------------------------------------

    def count_unembedded(self, model: str) -> int:
        """How many messages with text have no vector for ``model``."""
        ...

    def unembedded(self, model: str, limit: int, skip: frozenset[int] = frozenset()) -> list[MessageText]:
        """Up to ``limit`` messages with text and no vector for ``model``, newest first."""
        ...

    def count_vectors(self, model: str) -> int:
        """How many vectors (chunks) of ``model`` the store holds."""
        ...

    def add_vectors(self, db: Transaction, vectors: Sequence[MessageVector]) -> int:
        """Store vectors (of messages that still exist); returns how many messages got one."""
        ...

    # -- file chunks (question-aware passages of large files) -------------------------------

    def has_chunks(self, sha256: str, version: str) -> bool:
        """Whether the chunks of this content (by this extractor version) are indexed."""
        ...

    def put_chunks(
        self, db: Transaction, sha256: str, version: str, chunks: Sequence[ChunkRow]
    ) -> None:
        """Index a file's chunks for word search, once per (sha256, version)."""
        ...

    def rank_chunks(
        self, sha256: str, version: str, terms: Sequence[str], limit: int
    ) -> list[tuple[int, float]]:
        """The file's chunks holding any of ``terms``, best first, as (chunk index, score)."""
        ...

    def unembedded_chunks(
        self, model: str, limit: int, skip: frozenset[int] = frozenset()
    ) -> list[ChunkText]:
        """Up to ``limit`` indexed chunks with no vector for ``model``, newest first."""
        ...

    def add_chunk_vectors(
        self, db: Transaction, model: str, vectors: Sequence[tuple[int, Sequence[float]]]
    ) -> int:
        """Store (chunk id, vector) pairs of ``model``; returns how many were new."""
        ...

    def rank_chunk_vectors(
        self, sha256: str, version: str, model: str, vector: Sequence[float], limit: int
    ) -> list[tuple[int, float]]:
        """The file's chunks nearest to ``vector`` (same model and size), as (chunk index,
        cosine), best first; [] when none has a vector yet."""
        ...

    def record_sent_chunks(
        self,
        db: Transaction,
        session_id: str,
        message_id: int,
        sha256: str,
        indexes: Sequence[int],
    ) -> None:
        """Which chunks of a file a message sent (the rest of the file was left out)."""
        ...

    def sent_chunks(self, session_id: str, *, from_seq: int = 0) -> dict[str, frozenset[int]]:
        """Per content sha256, the chunks that the session's messages from ``from_seq`` on sent."""
        ...
