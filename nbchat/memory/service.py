"""The memory of one client: search, background embeddings, hits attached for next turn.

One :class:`Memory` per :class:`~nbchat.client.ChatClient` (its ``memory`` property), so
the vectors are loaded once per kernel and the embedding worker is shared by the magics
and the widget. Searching runs on the caller's thread through the client's store (which
keeps the vectors); embedding runs on the worker's thread with its own connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nbchat.core.passages import QueryVector
from nbchat.core.store import Hit, SearchFilter, Store
from nbchat.memory.embed import Embedder, EmbeddingClient, EmbeddingError
from nbchat.memory.floors import UNCALIBRATED, cosine_floor

__all__ = ["Memory", "VectorIndexInfo"]

QUERY_TIMEOUT_S = 15.0
RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class VectorIndexInfo:
    """The vectors a search uses: the embedding model's name and how many it has."""

    model: str
    count: int


class Memory:
    """Search and embeddings over the database of ``store``.

    ``embedding_url`` None means embeddings are off: searches are word-based only.
    ``attached_ids`` are message ids the user chose (``%chat recall --attach``) for the
    next turn; they are cleared once a turn is stored.
    """

    def __init__(
        self, store: Store, embedding_url: str | None, *, idle_exit_s: float = 30.0
    ) -> None:
        self.store = store
        self.embedding_url = embedding_url or None
        self.client = EmbeddingClient(embedding_url) if embedding_url else None
        self.embedder = (
            Embedder(store, self.client, idle_exit_s=idle_exit_s) if self.client else None
        )
        self.attached_ids: list[int] = []
        self.last_listing: list[int] = []  # message ids of the last `%chat recall`, in order
        self.last_search_used_vectors = False
        self._searched_models: set[str] = set()
        self._query_down_until = 0.0
        self._query_error: str | None = None
        self._lock = threading.Lock()

    # -- searching ----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        search_filter: SearchFilter | None = None,
        vector_query: str | None = None,
    ) -> list[Hit]:
        """Hybrid search (words, plus vectors when the embeddings server answers).

        ``vector_query`` is the text embedded for the vector side (default ``query``).
        """
        vector = self.query_vector(vector_query if vector_query is not None else query)
        model = self._vector_model() if vector is not None else None
        self.last_search_used_vectors = model is not None
        return self.store.search(
            query,
            limit=limit,
            search_filter=search_filter,
            query_vector=vector if model is not None else None,
            vector_model=model,
            cosine_floor=cosine_floor(model) if model is not None else None,
        )

    def browse(self, search_filter: SearchFilter, *, limit: int = 10) -> list[Hit]:
        return self.store.browse(search_filter, limit=limit)

    def hits(self, message_ids: Sequence[int]) -> list[Hit]:
        return self.store.hits(message_ids)

    def query_vector(self, text: str) -> Any:
        """The query's vector, or None when embeddings are off or the server is down.

        After a failure the server is left alone for a while, so a dead server costs one
        refused connection, not one per turn.
        """
        if self.client is None or not text.strip():
            return None
        if time.monotonic() < self._query_down_until:
            return None
        try:
            vector = self.client.embed([text[:4000]], timeout_s=QUERY_TIMEOUT_S)[0]
        except EmbeddingError as exc:
            self._query_down_until = time.monotonic() + RETRY_AFTER_S
            self._query_error = str(exc)
            return None
        self._query_error = None
        return vector

    def passage_query(self, text: str) -> QueryVector | None:
        """The question's vector for ranking a large file's chunks by meaning, with its
        model and cosine floor; None when embeddings are off or the server is down."""
        vector = self.query_vector(text)
        model = self._vector_model() if vector is not None else None
        if model is None:
            return None
        return QueryVector(vector, model, cosine_floor(model))

    def vector_index(self) -> VectorIndexInfo | None:
        """The vectors of the current model (None when the model is unknown)."""
        model = self._vector_model()
        if model is None:
            return None
        return VectorIndexInfo(model, self.store.count_vectors(model))

    def _vector_model(self) -> str | None:
        """The embedding model searches use, None when it cannot be learnt."""
        if self.client is None:
            return None
        try:
            model = self.client.model_name()
        except EmbeddingError:
            return None
        with self._lock:
            first_use = model not in self._searched_models
            self._searched_models.add(model)
        if first_use and self.embedder is not None:
            # A model this memory has not searched with yet (a new kernel, or the model
            # was changed): messages without its vectors are embedded in the background.
            self.embedder.notify()
        return model

    # -- embedding ----------------------------------------------------------------------

    def after_turn(self) -> None:
        """A turn was stored: clear attached hits, wake the embedding worker."""
        self.attached_ids.clear()
        if self.embedder is not None:
            self.embedder.notify()

    def catch_up(self) -> int:
        """Embed every message lacking a vector now, in this thread; 0 with embeddings off.

        Raises :class:`~nbchat.memory.embed.EmbeddingError` when the server is down.
        """
        if self.embedder is None:
            return 0
        return self.embedder.catch_up()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        return self.embedder.wait_idle(timeout_s) if self.embedder is not None else True

    def hold_embeddings(self) -> None:
        """A turn is being answered: background embedding waits (see :meth:`Embedder.hold`)."""
        if self.embedder is not None:
            self.embedder.hold()

    def release_embeddings(self) -> None:
        if self.embedder is not None:
            self.embedder.release()

    def status_text(self) -> str:
        """One line for ``%chat status``."""
        if self.embedder is None:
            return (
                "embeddings off (no embeddings server: set NBCHAT_EMBEDDING_URL or "
                "c.NbChat.embedding_url); recall searches words only"
            )
        status = self.embedder.status()
        if status.state == "unavailable" or (self._query_error and not status.embedded_messages):
            reason = status.last_error or self._query_error
            return f"embeddings off: {reason} Recall searches words only until it answers."
        text = status.as_text()
        if status.model and cosine_floor(status.model) == UNCALIBRATED:
            text += (
                f"; {status.model} has no measured cosine floor, so its vectors only order "
                "the hits found by words (see docs/memory.md)"
            )
        return text

    def close(self) -> None:
        if self.embedder is not None:
            self.embedder.close()
        elif self.client is not None:
            self.client.close()

