"""A backend for any server that speaks OpenAI's streaming chat-completions API.

llama-server, OpenRouter, vLLM, Ollama and LM Studio all accept the same request; they
differ in where the endpoint lives, which headers they want and how they name their
errors. This class holds the common part; :mod:`nbchat.backends.llama` and
:mod:`nbchat.backends.openrouter` adjust it.

Foreign errors are translated here, at one boundary: httpx's connection and timeout
errors become :class:`BackendUnreachable` / :class:`BackendError` before the stream
starts, and :class:`StreamError` events once it has.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from nbchat.backends.classify import ErrorContext, classify_error
from nbchat.backends.sse import StreamDecoder, events_from_completion, iter_response_events
from nbchat.core.errors import BackendError, BackendUnreachable, ConfigError, redact
from nbchat.core.events import BackendDescription, Event, Message, TokenCounter
from nbchat.core.settings import BACKEND_INFO

if TYPE_CHECKING:
    import httpx

    from nbchat.core.settings import BackendInfo, Settings

__all__ = ["OpenAICompatBackend", "display_url"]

logger = logging.getLogger("nbchat.backends")

_ERROR_BODY_LIMIT_BYTES = 64 * 1024
_COMPLETION_LIMIT_BYTES = 8 * 1024 * 1024
_LISTING_TIMEOUT_S = 30.0


def _read_capped(response: "httpx.Response", limit_bytes: int) -> bytes:
    """At most ``limit_bytes`` of a streamed body; a body that breaks off is kept as is."""
    import httpx

    parts: list[bytes] = []
    size = 0
    try:
        for piece in response.iter_bytes():
            parts.append(piece)
            size += len(piece)
            if size >= limit_bytes:
                break
    except httpx.HTTPError:
        pass
    return b"".join(parts)[:limit_bytes]


def display_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages and reprs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _context_length(entry: Mapping[str, Any]) -> int | None:
    """The context length a ``/models`` entry declares, under any of the usual names."""
    candidates: list[object] = [entry.get("context_length"), entry.get("max_model_len")]
    top_provider = entry.get("top_provider")
    if isinstance(top_provider, Mapping):
        candidates.append(top_provider.get("context_length"))
    meta = entry.get("meta")
    if isinstance(meta, Mapping):
        candidates += [meta.get("n_ctx"), meta.get("n_ctx_train")]
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class OpenAICompatBackend:
    """Streams chat completions from ``{base_url}{chat_path}``.

    ``base_url`` is used as given: for OpenAI-style servers it already ends in ``/v1``.
    Timeouts are in seconds: ``connect_timeout`` for opening a connection,
    ``request_timeout`` for the longest silence while waiting for bytes.
    ``transport`` replaces httpx's network transport (tests only).
    """

    name = "openai"
    chat_path = "/chat/completions"
    models_path = "/models"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        default_model: str | None = None,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 600.0,
        extra_headers: Mapping[str, str] | None = None,
        transport: "httpx.BaseTransport | None" = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = display_url(self.base_url)
        self._api_key = api_key.strip() if api_key and api_key.strip() else None
        self.default_model = default_model
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._extra_headers = dict(extra_headers or {})
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._models: dict[str, int | None] | None = None

    @classmethod
    def from_settings(
        cls, settings: "Settings", info: "BackendInfo", api_key: str | None
    ) -> "OpenAICompatBackend":
        """The backend an entry of ``BACKEND_INFO`` asks for (see the registry); it
        takes the entry's name, so its label and error hints are the entry's."""
        backend = cls(
            settings.resolved_base_url,
            api_key,
            info.default_model,
            connect_timeout=settings.connect_timeout,
            request_timeout=settings.request_timeout,
        )
        backend.name = info.name
        return backend

    def __repr__(self) -> str:
        key_state = "<set>" if self._api_key else "None"
        return (
            f"{type(self).__name__}(base_url={self.shown_url!r}, "
            f"default_model={self.default_model!r}, api_key={key_state})"
        )

    # -- naming --------------------------------------------------------------------

    @property
    def label(self) -> str:
        """The kind of server, from its entry in ``BACKEND_INFO``."""
        info = BACKEND_INFO.get(self.name)
        return info.label if info is not None else self.name

    @property
    def url_hint(self) -> str:
        """Where the user sets this server's address, from its ``BACKEND_INFO`` entry."""
        info = BACKEND_INFO.get(self.name) or BACKEND_INFO["openai"]
        return info.url_hint

    @property
    def server_label(self) -> str:
        """How messages name this server."""
        return f"the server at {self.shown_url}"

    def describe(self) -> BackendDescription:
        """Where turns go: kind, name in messages, address (no credentials), model."""
        return BackendDescription(
            self.name, self.label, self.server_label, self.shown_url, self.default_model
        )

    def check_ready(self) -> None:
        """Nothing to check before a turn: the request itself says what is wrong."""

    def health(self) -> str:
        """For status lines: ``ok``, or what is wrong (raises ``BackendError`` when a
        readiness check fails). Asks the model list, without credentials."""
        from nbchat.backends.probe import probe_url

        return probe_url(self.base_url + self.models_path)

    def _error_context(self, model: str | None) -> ErrorContext:
        return ErrorContext(
            backend=self.name, server=self.server_label, model=model, api_key=self._api_key
        )

    def _url(self, path: str) -> str:
        return self.base_url + path

    # -- HTTP plumbing -----------------------------------------------------------------

    def _http(self) -> "httpx.Client":
        """The shared client, created on first use so that importing costs nothing."""
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.request_timeout, connect=self.connect_timeout),
                    transport=self._transport,
                )
            return self._client

    def _headers(self, *, streaming: bool = False) -> dict[str, str]:
        headers = dict(self._extra_headers)
        if streaming:
            headers["Accept"] = "text/event-stream"
            headers["Cache-Control"] = "no-store"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _unreachable(self, exc: Exception, url: str) -> BackendUnreachable:
        """The error for a connection that could not be opened."""
        import httpx

        url = display_url(url)
        if isinstance(exc, httpx.ConnectTimeout):
            return BackendUnreachable(
                f"{self.server_label} did not accept a connection within "
                f"{self.connect_timeout:g} s ({url}). Check that the server is running and "
                f"the base URL ({self.url_hint}).",
                kind="timeout",
            )
        return BackendUnreachable(
            f"Cannot reach {self.server_label}: {self._connect_reason(exc)} ({url}). Check "
            f"that the server is running and the base URL ({self.url_hint})."
        )

    @staticmethod
    def _connect_reason(exc: Exception) -> str:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, OSError):
                if cause.errno == errno.ECONNREFUSED:
                    return "the connection was refused"
                if cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    return "the network or host is unreachable"
            cause = cause.__cause__ or cause.__context__
        text = str(exc).lower()
        if "refused" in text:
            return "the connection was refused"
        if "name" in text and ("resolution" in text or "known" in text or "resolve" in text):
            return "the host name cannot be resolved"
        return "the connection failed"

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: "httpx.Timeout | None" = None,
    ) -> "httpx.Response":
        """A small non-streaming request; connection problems become our errors."""
        import httpx

        url = self._url(path)
        client = self._http()
        try:
            if timeout is None:
                request = client.build_request(
                    method, url, json=json_body, headers=self._headers()
                )
            else:
                request = client.build_request(
                    method, url, json=json_body, headers=self._headers(), timeout=timeout
                )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._bad_url() from exc
        return self._send(
            request,
            stream=False,
            late=f"{self.server_label} did not answer {method} {path} in time. Try again.",
            dropped=f"{self.server_label} closed the connection without answering "
            f"{method} {path}. Check that the server is running.",
        )

    def _send(self, request: "httpx.Request", *, stream: bool, late: str, dropped: str) -> "httpx.Response":
        """Send ``request``; connection problems become our errors, named for the user.

        A connection the server closed while it sat idle in the pool fails before any
        byte of an answer: the request is sent once more, on a new connection.
        """
        import httpx

        client = self._http()
        for attempt in (1, 2):
            try:
                return client.send(request, stream=stream)
            except httpx.RemoteProtocolError as exc:
                if attempt == 1:
                    logger.debug("connection dropped before an answer; sending again")
                    continue
                raise BackendUnreachable(dropped) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self._unreachable(exc, str(request.url)) from exc
            except httpx.TimeoutException as exc:
                raise BackendError(late, "timeout") from exc
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise self._bad_url() from exc
            except httpx.TransportError as exc:
                raise BackendUnreachable(dropped) from exc
        raise AssertionError("unreachable")

    def _bad_url(self) -> ConfigError:
        return ConfigError(
            f"The base URL {self.shown_url!r} is not an http(s) URL: set "
            f"{self.url_hint} to something like http://127.0.0.1:8080."
        )

    # -- streaming ---------------------------------------------------------------------

    def _before_request(self) -> None:
        """Checks to run before a chat request (llama-server checks its health)."""

    def _chat_body(
        self,
        messages: Sequence[Message],
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(message) for message in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        return {key: value for key, value in body.items() if value is not None}

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[Event]:
        """Send the request; once the server has answered it, its events.

        The request goes out now, not at the first ``next``: a server that cannot be
        reached, or that refuses the request, raises here (``BackendError``), before
        the caller stores anything. Closing the iterator closes the response.

        A backend used on its own (not through the client) checks readiness here; one
        that the client has just checked trusts that check (llama-server's is kept for
        a few seconds), so a turn asks the server once.
        """
        self._before_request()
        model_name = model or self.default_model
        context = self._error_context(model_name)
        body = self._chat_body(messages, model_name, max_tokens, temperature)
        response = self._open_stream(body, context)
        events = self._events_then_close(response, context)
        try:
            next(events)  # started: closing it now runs its ``finally``
        except BaseException:
            response.close()
            raise
        return cast("Iterator[Event]", events)

    def _events_then_close(
        self, response: "httpx.Response", context: ErrorContext
    ) -> Generator[Event | None, None, None]:
        """The response's events, after one ``None`` that only starts the generator."""
        try:
            yield None
            yield from self._response_events(response, context)
        finally:
            response.close()

    def _open_stream(self, body: dict[str, Any], context: ErrorContext) -> "httpx.Response":
        """Send the chat request and return a response that is ready to stream."""
        import httpx

        url = self._url(self.chat_path)
        client = self._http()
        logger.debug("POST %s (model %s)", display_url(url), context.model)
        try:
            request = client.build_request(
                "POST", url, json=body, headers=self._headers(streaming=True)
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._bad_url() from exc
        response = self._send(
            request,
            stream=True,
            late=f"{self.server_label} did not start answering within "
            f"{self.request_timeout:g} s. Try again, or raise c.NbChat.request_timeout.",
            dropped=f"{self.server_label} closed the connection without answering. Check "
            "that the server is running and try again.",
        )
        if response.status_code >= 400:
            try:
                raw = _read_capped(response, _ERROR_BODY_LIMIT_BYTES)
            finally:
                response.close()
            raise classify_error(response.status_code, raw, response.headers, context)
        return response

    def _response_events(
        self, response: "httpx.Response", context: ErrorContext
    ) -> Iterator[Event]:
        import httpx

        content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "text/event-stream":
            yield from self._non_stream_events(response, content_type, context)
            return
        decoder = StreamDecoder(context)
        try:
            yield from iter_response_events(response, decoder)
        except httpx.TimeoutException:
            yield from decoder.fail(
                "timeout",
                f"{self.server_label} sent nothing for {self.request_timeout:g} s; the "
                "partial answer was kept. Try again, or raise c.NbChat.request_timeout.",
            )
        except httpx.RequestError:
            yield from decoder.fail(
                "truncated",
                f"The connection to {self.server_label} broke before the answer was "
                "complete; the partial answer was kept. Try again.",
            )

    def _non_stream_events(
        self, response: "httpx.Response", content_type: str, context: ErrorContext
    ) -> list[Event]:
        """A server that answered without an event stream: one JSON completion or an error."""
        import json

        raw = _read_capped(response, _COMPLETION_LIMIT_BYTES)
        try:
            body = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            if body.get("error") is not None:
                raise classify_error(None, body, response.headers, context)
            if isinstance(body.get("choices"), list):
                return events_from_completion(body, context)
        shown = content_type or "no content type"
        raise BackendError(
            redact(
                f"{self.server_label} answered with {shown} instead of a chat stream. "
                f"Check the base URL ({self.url_hint}) and the backend "
                "(c.NbChat.backend).",
                self._api_key,
            ),
            "generic",
            status=response.status_code,
        )

    # -- facts about the model -------------------------------------------------------------

    def _fetch_model_listing(self) -> dict[str, int | None] | None:
        """``{model id: context length}`` from ``/models``, or None when unavailable."""
        import httpx

        try:
            response = self._request(
                "GET",
                self.models_path,
                timeout=httpx.Timeout(_LISTING_TIMEOUT_S, connect=self.connect_timeout),
            )
            if response.status_code != 200:
                return None
            payload = response.json()
        except (BackendError, ConfigError, ValueError):
            return None
        entries = payload.get("data") if isinstance(payload, Mapping) else payload
        if not isinstance(entries, list):
            return None
        listing: dict[str, int | None] = {}
        for entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                listing[entry["id"]] = _context_length(entry)
        return listing

    def _model_listing(self) -> dict[str, int | None] | None:
        if self._models is None:
            self._models = self._fetch_model_listing()
        return self._models

    def context_window(self, model: str | None = None) -> int | None:
        """The model's context length as the server's ``/models`` listing declares it."""
        name = model or self.default_model
        listing = self._model_listing()
        if not listing:
            return None
        if name is not None:
            return listing.get(name)
        if len(listing) == 1:
            return next(iter(listing.values()))
        return None

    def token_counter(self) -> TokenCounter | None:
        """None: a generic server offers no tokenizer endpoint."""
        return None

    def close(self) -> None:
        """Close the connections; the backend can still be used afterwards."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> "OpenAICompatBackend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
