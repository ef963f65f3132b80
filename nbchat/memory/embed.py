"""Message embeddings: a client for ``/v1/embeddings`` and a background worker.

After each stored turn the worker is woken; it embeds every message that has no vector
for the current embedding model yet (so turns stored while the server was down catch up
on the next wake) and writes the vectors as float32 blobs. It runs on its own thread
with its own connection to the store (:meth:`~nbchat.core.store.Store.reopen`), so it
never blocks a cell and never shares the cell's connection. Long messages are cut into chunks that fit the server's batch (llama-server
refuses an input longer than its ``n_ubatch``, 512 tokens by default); one vector is
stored per chunk.

No server, or a server without embeddings, only turns embeddings off: the worker records
why (see :meth:`Embedder.status`) and never raises into a cell.

Vectors are stored with their model's name, so changing the embedding model leaves the
old vectors in place (switching back costs nothing) and makes every message "missing"
for the new one: the worker re-embeds them, newest first, in batches of
``MISSING_BATCH_MESSAGES``. That backlog never holds up a turn: it runs on the worker's
thread, and between batches it waits while a turn is being answered (see
:meth:`Embedder.hold`), so the chat engine has the CPU to itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nbchat.core.errors import NbChatError, redact
from nbchat.core.store import MessageText, MessageVector, Store
from nbchat.core.tokens import EstimateCounter

__all__ = [
    "EmbeddingError",
    "EmbeddingClient",
    "Embedder",
    "EmbedderStatus",
    "chunk_text",
    "CHUNK_TOKENS",
]

# Well under llama-server's default 512-token physical batch; the estimate errs high.
CHUNK_TOKENS = 320
BATCH_INPUTS = 16
MODELS_TIMEOUT_S = 10.0
MISSING_BATCH_MESSAGES = 32
# A batch is background work: on a loaded 2-core machine a small model may take seconds
# per input, and giving up after the client's usual minute would stall the backlog.
BATCH_TIMEOUT_S = 600.0
HOLD_MAX_S = 300.0  # a turn that never says it ended does not stop embeddings for good
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n")


class EmbeddingError(NbChatError):
    """The embeddings server cannot be used right now (down, refusing, or malformed)."""


def chunk_text(text: str, max_tokens: int = CHUNK_TOKENS) -> list[str]:
    """Cut ``text`` into pieces of at most about ``max_tokens`` (estimated) tokens.

    Paragraphs are kept whole when they fit, then sentences, then words; a word longer
    than a chunk (a hash, a base64 run) is cut by characters.
    """
    counter = EstimateCounter()
    text = text.strip()
    if not text:
        return []
    if counter.count(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        pieces.extend(_split_unit(paragraph.strip(), max_tokens, counter, 0))
    return _pack([p for p in pieces if p], max_tokens, counter)


def _split_unit(unit: str, max_tokens: int, counter: EstimateCounter, level: int) -> list[str]:
    if not unit or counter.count(unit) <= max_tokens:
        return [unit]
    if level == 0:
        parts = _SENTENCE_END.split(unit)
    elif level == 1:
        parts = unit.split()
    else:
        step = max(1, max_tokens)  # about one token per character at worst
        return [unit[i : i + step] for i in range(0, len(unit), step)]
    if len(parts) <= 1:
        return _split_unit(unit, max_tokens, counter, level + 1)
    out: list[str] = []
    for part in parts:
        out.extend(_split_unit(part.strip(), max_tokens, counter, level + 1))
    return _pack([p for p in out if p], max_tokens, counter)


def _pack(parts: Sequence[str], max_tokens: int, counter: EstimateCounter) -> list[str]:
    """Join neighbouring parts greedily while they fit in one chunk."""
    chunks: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if current and counter.count(candidate) > max_tokens:
            chunks.append(current)
            current = part
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


class EmbeddingClient:
    """Talks to an OpenAI-style ``/v1/embeddings`` endpoint (llama-server's, typically).

    ``url`` is the server's root (``http://127.0.0.1:8081``) or its ``/v1`` base. The
    model's name, used to tag stored vectors, is read once from ``/v1/models``.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 2.0,
        request_timeout_s: float = 60.0,
        model: str | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.url = base
        self._v1 = base if base.endswith("/v1") else base + "/v1"
        self._timeout = (connect_timeout_s, request_timeout_s)
        self._model = model
        self._model_given = model is not None
        self._http: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        import httpx

        with self._lock:
            if self._http is None:
                connect_s, request_s = self._timeout
                self._http = httpx.Client(
                    timeout=httpx.Timeout(request_s, connect=connect_s), trust_env=False
                )
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def model_name(self) -> str:
        """The name vectors are stored under: the served model's file name."""
        if self._model is None:
            data = self._request("GET", "/models", timeout_s=MODELS_TIMEOUT_S)
            entries = data.get("data") or data.get("models") or []
            name = ""
            if entries and isinstance(entries[0], dict):
                name = str(entries[0].get("id") or entries[0].get("model") or "")
            self._model = name.replace("\\", "/").rsplit("/", 1)[-1] or "embeddings"
        return self._model

    def reload_model_name(self) -> str:
        """Ask the server again which model it serves (it may have been restarted with
        another one on the same address); a name given to the constructor is kept."""
        if not self._model_given:
            self._model = None
        return self.model_name()

    def embed(self, texts: Sequence[str], *, timeout_s: float | None = None) -> list[list[float]]:
        """One vector per text, in order; raises :class:`EmbeddingError`.

        ``timeout_s`` overrides the read timeout (a query in a cell waits less than the
        background worker).
        """
        if not texts:
            return []
        data = self._request(
            "POST", "/embeddings", {"input": list(texts), "model": self.model_name()}, timeout_s
        )
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(texts):
            raise EmbeddingError(
                f"The embeddings server at {self.url} sent an unexpected answer: "
                "check that it was started with --embeddings."
            )
        ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
        vectors = [item.get("embedding") for item in ordered]
        if not all(isinstance(v, list) and v for v in vectors):
            raise EmbeddingError(
                f"The embeddings server at {self.url} sent no vectors: start it with "
                "--embeddings (and a pooling type)."
            )
        return vectors

    def _send(self, method: str, url: str, payload: Any, extra: dict[str, Any]) -> Any:
        """One request; sent once more when the server closed the pooled connection
        before any byte of an answer (llama-server closes kept-alive connections)."""
        import httpx

        try:
            return self._client().request(method, url, json=payload, **extra)
        except httpx.RemoteProtocolError:
            return self._client().request(method, url, json=payload, **extra)

    def _request(
        self, method: str, path: str, payload: Any = None, timeout_s: float | None = None
    ) -> dict[str, Any]:
        import httpx

        extra: dict[str, Any] = {}
        if timeout_s is not None:
            extra["timeout"] = httpx.Timeout(timeout_s, connect=self._timeout[0])
        try:
            response = self._send(method, self._v1 + path, payload, extra)
        except httpx.TimeoutException as exc:
            raise EmbeddingError(
                f"The embeddings server at {self.url} did not answer in time: it may be busy "
                "or stuck; check it, or restart it."
            ) from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(
                f"Cannot reach the embeddings server at {self.url}: start it with "
                "`%chat engine start --embeddings` or set NBCHAT_EMBEDDING_URL / "
                "c.NbChat.embedding_url."
            ) from exc
        if response.status_code >= 400:
            raise EmbeddingError(
                f"The embeddings server at {self.url} answered {response.status_code}: "
                f"{_error_detail(response)}"
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise EmbeddingError(
                f"The embeddings server at {self.url} did not answer JSON: is it an "
                "OpenAI-compatible server?"
            ) from exc
        if not isinstance(data, dict):
            raise EmbeddingError(f"The embeddings server at {self.url} sent an unexpected answer.")
        return data


def _error_detail(response: Any) -> str:
    """The server's own error message (OpenAI style), else the start of its answer."""
    detail = ""
    try:
        data = response.json()
        if isinstance(data, dict):
            error = data.get("error")
            detail = str(error.get("message", "")) if isinstance(error, dict) else str(error or "")
    except ValueError:
        pass
    return redact((detail or response.text)[:300].strip()) or "no details given"


def embed_texts(
    client: EmbeddingClient, texts: Sequence[str], timeout_s: float | None = None
) -> list[list[Any] | None]:
    """For each text its vectors, in one request when the server takes them all.

    A text the server finds too long is halved until it fits (so it may get several
    vectors); a text the server refuses otherwise gets None and the others still go
    through. A server that is down raises :class:`EmbeddingError`.
    """
    if not texts:
        return []
    try:
        return [[vector] for vector in client.embed(texts, timeout_s=timeout_s)]
    except EmbeddingError as exc:
        if not _refused_input(exc):
            raise
        too_large = _too_large(exc)
    if len(texts) > 1:
        return [embed_texts(client, [text], timeout_s)[0] for text in texts]
    text = texts[0]
    if not too_large or len(text) < 32:
        return [None]
    vectors: list[Any] = []
    for half in _halves(text):
        got = embed_texts(client, [half], timeout_s)[0]
        if got is None:
            return [None]
        vectors.extend(got)
    return [vectors]


def _too_large(exc: EmbeddingError) -> bool:
    text = str(exc)
    return "too large" in text or "too long" in text


def _refused_input(exc: EmbeddingError) -> bool:
    """The server answered, and refused this input (not: the server is unusable)."""
    text = str(exc)
    return _too_large(exc) or "answered 400" in text or "answered 413" in text


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    cut = text.rfind(" ", 0, middle)
    cut = cut if cut > middle // 2 else middle
    return [part for part in (text[:cut].strip(), text[cut:].strip()) if part]


@dataclass(frozen=True)
class EmbedderStatus:
    """What ``%chat status`` shows about embeddings."""

    url: str
    state: str  # "idle", "working", "unavailable"
    model: str | None
    embedded_messages: int
    last_error: str | None
    backlog: int = 0  # messages still without a vector for the model, while working

    def as_text(self) -> str:
        if self.state == "unavailable":
            return f"embeddings off: {self.last_error}"
        name = self.model or "unknown model"
        state = f"working, {self.backlog:,} to go" if self.backlog else self.state
        return (
            f"embeddings on ({name} at {self.url}; {self.embedded_messages:,} "
            f"message(s) embedded this session; {state})"
        )


class Embedder:
    """Fills the ``embeddings`` table for one database from one embeddings server.

    :meth:`notify` wakes a daemon thread (started on demand, gone after ``idle_exit_s``
    without work) that embeds every message lacking a vector for the current model.
    :meth:`catch_up` does the same work in the caller's thread. Both use their own
    connection to ``store``'s data (:meth:`~nbchat.core.store.Store.reopen`).
    """

    def __init__(
        self,
        store: Store,
        client: EmbeddingClient,
        *,
        idle_exit_s: float = 30.0,
        chunk_tokens: int = CHUNK_TOKENS,
    ) -> None:
        self.store = store
        self.client = client
        self.idle_exit_s = idle_exit_s
        self.chunk_tokens = chunk_tokens
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._work_lock = threading.Lock()
        self._failed: set[int] = set()
        self._failed_chunks: set[int] = set()
        self._embedded = 0
        self._backlog = 0
        self._last_error: str | None = None
        self._working = False
        self._holds = 0
        self._held_since = 0.0
        self._released = threading.Condition(self._state_lock)

    # -- public -------------------------------------------------------------------------

    def notify(self) -> None:
        """Ask for the missing messages to be embedded soon; never blocks, never raises."""
        with self._state_lock:
            if self._closed:
                return
            self._idle.clear()
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="nbchat-embedder", daemon=True
                )
                self._thread.start()

    def catch_up(self, *, max_messages: int | None = None) -> int:
        """Embed the messages that have no vector for the current model; return how many.

        Raises :class:`EmbeddingError` when the server cannot be used.
        """
        store = self.store.reopen()
        try:
            return self._embed_missing(store, max_messages)
        finally:
            store.close()

    def hold(self) -> None:
        """A turn is being answered: the worker finishes its batch, then waits."""
        with self._state_lock:
            if self._holds == 0:
                self._held_since = time.monotonic()
            self._holds += 1

    def release(self) -> None:
        """The turn is over: the worker goes on (one :meth:`release` per :meth:`hold`)."""
        with self._state_lock:
            self._holds = max(0, self._holds - 1)
            self._released.notify_all()

    def _give_way(self) -> None:
        """Wait while a turn holds the worker (at most ``HOLD_MAX_S`` per hold)."""
        with self._state_lock:
            while self._holds and not self._closed:
                left = self._held_since + HOLD_MAX_S - time.monotonic()
                if left <= 0:
                    return
                self._released.wait(min(left, 1.0))

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once no embedding work is pending (for tests and ``%chat status``)."""
        return self._idle.wait(timeout_s)

    def status(self) -> EmbedderStatus:
        with self._state_lock:
            if self._last_error is not None:
                state = "unavailable"
            else:
                state = "working" if self._working else "idle"
            return EmbedderStatus(
                self.client.url, state, self.client._model, self._embedded, self._last_error,
                self._backlog if self._working else 0,
            )

    def close(self, timeout_s: float = 5.0) -> None:
        with self._state_lock:
            self._closed = True
            thread = self._thread
            self._released.notify_all()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self.client.close()

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        store: Store | None = None
        try:
            while True:
                if not self._wake.wait(self.idle_exit_s):
                    with self._state_lock:
                        if not self._wake.is_set():
                            self._thread = None
                            return
                with self._state_lock:
                    if self._closed:
                        return
                    self._wake.clear()
                    self._working = True
                try:
                    if store is None:
                        store = self.store.reopen()
                    self._embed_missing(store, None, give_way=True)
                except EmbeddingError:
                    pass  # recorded in _last_error; the next wake tries again
                except Exception as exc:  # noqa: BLE001 - the store's errors, whatever its driver
                    # shown by ``%chat status``; the next wake tries again
                    with self._state_lock:
                        self._last_error = f"the database could not be read ({exc})"
                finally:
                    with self._state_lock:
                        self._working = False
                        if not self._wake.is_set():
                            self._idle.set()
        finally:
            if store is not None:
                store.close()
            self._idle.set()

    def _embed_missing(
        self, store: Store, max_messages: int | None, *, give_way: bool = False
    ) -> int:
        with self._work_lock:
            try:
                model = self.client.reload_model_name()
                with self._state_lock:
                    self._backlog = store.count_unembedded(model)
                done = 0
                while max_messages is None or done < max_messages:
                    if give_way:
                        self._give_way()
                    with self._state_lock:
                        if self._closed:
                            break
                    room = MISSING_BATCH_MESSAGES
                    if max_messages is not None:
                        room = min(room, max_messages - done)
                    batch = store.unembedded(model, room, frozenset(self._failed))
                    if not batch:
                        break
                    done += self._embed_batch(store, model, batch)
                    with self._state_lock:
                        self._backlog = max(0, self._backlog - len(batch))
                if max_messages is None:
                    self._embed_chunks(store, model, give_way)
            except EmbeddingError as exc:
                with self._state_lock:
                    self._last_error = str(exc)
                raise
            with self._state_lock:
                self._last_error = None
            return done

    def _embed_chunks(self, store: Store, model: str, give_way: bool) -> int:
        """Embed the attached files' chunks (after the messages), so the passages of a
        large file rank by meaning as well as words; returns how many were stored."""
        done = 0
        while True:
            if give_way:
                self._give_way()
            with self._state_lock:
                if self._closed:
                    return done
            batch = store.unembedded_chunks(model, BATCH_INPUTS, frozenset(self._failed_chunks))
            if not batch:
                return done
            found = embed_texts(self.client, [chunk.text for chunk in batch], BATCH_TIMEOUT_S)
            rows: list[tuple[int, Sequence[float]]] = []
            for chunk, got in zip(batch, found):
                if not got:
                    self._failed_chunks.add(chunk.chunk_id)  # this chunk, not the server
                else:  # a chunk the server halved: the mean of its halves
                    rows.append((chunk.chunk_id, [sum(v) / len(got) for v in zip(*got)]))
            with store.transaction() as db:
                done += store.add_chunk_vectors(db, model, rows)

    def _embed_batch(self, store: Store, model: str, batch: Sequence[MessageText]) -> int:
        """Embed some messages' chunks, several messages per request; store them at once."""
        pieces = [
            (message.message_id, chunk)
            for message in batch
            for chunk in chunk_text(message.content, self.chunk_tokens)
        ]
        vectors: dict[int, list[Any]] = {message.message_id: [] for message in batch}
        refused = {message.message_id for message in batch if not message.content.strip()}
        for start in range(0, len(pieces), BATCH_INPUTS):
            group = pieces[start : start + BATCH_INPUTS]
            found = embed_texts(self.client, [t for _, t in group], BATCH_TIMEOUT_S)
            for (message_id, _), got in zip(group, found):
                if got is None:
                    refused.add(message_id)  # this message, not the server: skip it
                else:
                    vectors[message_id].extend(got)
        self._failed |= refused
        rows = [
            MessageVector(message_id, model, index, vector)
            for message_id, found in vectors.items()
            if message_id not in refused
            for index, vector in enumerate(found)
        ]
        with store.transaction() as db:
            stored = store.add_vectors(db, rows)
        with self._state_lock:
            self._embedded += stored
        return stored

