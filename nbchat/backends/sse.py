"""OpenAI chat-completion stream semantics on top of Server-Sent Events.

``httpx-sse`` does the framing (lines split on CR, LF and CRLF only, multi-line ``data``
joined, comments skipped). This module owns what the payloads mean:

- ``[DONE]`` ends the stream; so does a non-empty ``finish_reason``, but a usage chunk
  may still follow it (llama-server and OpenRouter send usage after the finish), so the
  decoder keeps reading until ``[DONE]``, the end of the body, or a usage object;
- text comes from ``choices[0].delta.content``;
- an ``error`` object, or ``finish_reason: "error"``, becomes a classified
  :class:`StreamError`; the caller keeps the text received so far;
- the end of the body before any ``[DONE]`` or ``finish_reason`` is a *truncated*
  stream, not a success;
- ``usage`` and llama.cpp's ``timings`` become one :class:`Usage` just before the end;
- llama-server's ``prompt_progress`` object (sent when the request asked for
  ``return_progress``: one chunk when it starts reading the prompt, one per batch of
  2,048 tokens, one when done, each with an empty delta) becomes a
  :class:`PromptProgress`.

:class:`StreamDecoder` is pure (payload strings in, events out) so it can be tested
on its own; :func:`iter_response_events` is the thin I/O part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nbchat.backends.classify import ErrorContext, classify_error, stream_error_from
from nbchat.core.errors import redact
from nbchat.core.events import Done, Event, PromptProgress, StreamError, TextDelta, Usage

if TYPE_CHECKING:
    import httpx

__all__ = [
    "StreamDecoder",
    "decode_payloads",
    "iter_response_events",
    "events_from_completion",
]

_DONE_MARK = "[DONE]"


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _prompt_progress(value: object) -> PromptProgress | None:
    """llama-server's ``{"total", "cache", "processed", "time_ms"}``, or None."""
    if not isinstance(value, Mapping):
        return None
    total = _as_int(value.get("total"))
    processed = _as_int(value.get("processed"))
    if total is None or processed is None or total <= 0:
        return None
    return PromptProgress(
        processed_tokens=processed,
        total_tokens=total,
        cached_tokens=_as_int(value.get("cache")) or 0,
        elapsed_ms=_as_float(value.get("time_ms")) or 0.0,
    )


class StreamDecoder:
    """Turns the ``data`` payloads of one chat stream into events.

    Feed each payload with :meth:`feed`; call :meth:`end` at the end of the body, or
    :meth:`fail` when the transport broke. Once :attr:`finished` is true, the stream
    has emitted its last event and further input is ignored.
    """

    def __init__(self, context: ErrorContext) -> None:
        self._context = context
        self._finish_reason: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._timings: Mapping[str, Any] | None = None
        self.finished = False

    # -- input -----------------------------------------------------------------

    def feed(self, data: str, event: str = "message") -> list[Event]:
        """Events for one SSE event's data (``event`` is its SSE event name)."""
        if self.finished:
            return []
        stripped = data.strip()
        if not stripped:
            return []
        if stripped == _DONE_MARK:
            return self._close_normally()
        try:
            chunk = json.loads(stripped)
        except ValueError:
            excerpt = redact(" ".join(stripped.split())[:120], self._context.api_key)
            return self.fail(
                "generic",
                f"{self._context.server} sent a chunk that is not JSON ({excerpt!r}); "
                "the partial answer was kept.",
            )
        if not isinstance(chunk, Mapping):
            return []
        if event == "error" or chunk.get("error") is not None:
            return self._fail_with(chunk)
        return self._read_chunk(chunk)

    def end(self) -> list[Event]:
        """Events for the end of the body."""
        if self.finished:
            return []
        if self._finish_reason is not None:
            return self._close_normally()
        return self.fail(
            "truncated",
            f"The answer from {self._context.server} stopped before it was complete "
            "(the stream ended without a finish); the partial answer was kept. "
            "Try again.",
        )

    def finish_now(self) -> list[Event]:
        """End the stream normally now (a complete, non-streamed answer)."""
        if self.finished:
            return []
        return self._close_normally()

    def fail(self, kind: str, message: str, retry_after: float | None = None) -> list[Event]:
        """Events that end the stream with an error (usage first, when known)."""
        if self.finished:
            return []
        self.finished = True
        events: list[Event] = self._usage_events()
        events.append(
            StreamError(
                kind=kind,
                message=redact(message, self._context.api_key),
                retry_after=retry_after,
            )
        )
        return events

    # -- internals ---------------------------------------------------------------

    def _read_chunk(self, chunk: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self._usage = usage
        timings = chunk.get("timings")
        if isinstance(timings, Mapping):
            self._timings = timings
        progress = _prompt_progress(chunk.get("prompt_progress"))
        if progress is not None and self._finish_reason is None:
            events.append(progress)
        choice = self._first_choice(chunk)
        finish_reason = None
        if choice is not None:
            delta = choice.get("delta")
            if not isinstance(delta, Mapping):
                delta = choice.get("message")
            content = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(content, str) and content and self._finish_reason is None:
                events.append(TextDelta(content))
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                finish_reason = reason
        if finish_reason == "error":
            return events + self._fail_with(chunk)
        if finish_reason is not None and self._finish_reason is None:
            self._finish_reason = finish_reason
        if self._finish_reason is not None and isinstance(usage, Mapping):
            # The usage that follows the finish has arrived: nothing more is expected,
            # so a server that keeps the connection open cannot make us wait.
            events += self._close_normally()
        return events

    @staticmethod
    def _first_choice(chunk: Mapping[str, Any]) -> Mapping[str, Any] | None:
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return None
        for choice in choices:
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                return choice
        return None

    def _fail_with(self, chunk: Mapping[str, Any]) -> list[Event]:
        if chunk.get("error") is None:
            error = classify_error(
                None,
                {"error": {"message": "the provider stopped with an error"}},
                None,
                self._context,
            )
        else:
            error = classify_error(None, chunk, None, self._context)
        event = stream_error_from(error)
        return self.fail(event.kind, event.message, event.retry_after)

    def _close_normally(self) -> list[Event]:
        self.finished = True
        events = self._usage_events()
        events.append(Done(self._finish_reason or "stop"))
        return events

    def _usage_events(self) -> list[Event]:
        usage = self._usage or {}
        timings = self._timings or {}
        if not usage and not timings:
            return []
        details = usage.get("prompt_tokens_details")
        cached = _as_int(details.get("cached_tokens")) if isinstance(details, Mapping) else None
        prompt_tokens = _as_int(usage.get("prompt_tokens"))
        completion_tokens = _as_int(usage.get("completion_tokens"))
        prompt_n = _as_int(timings.get("prompt_n"))
        cache_n = _as_int(timings.get("cache_n"))
        if cached is None:
            cached = cache_n
        if prompt_tokens is None and prompt_n is not None:
            prompt_tokens = prompt_n + (cache_n or 0)
        if completion_tokens is None:
            completion_tokens = _as_int(timings.get("predicted_n"))
        return [
            Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_tokens=cached,
                cost=_as_float(usage.get("cost")),
                timings=dict(timings),
            )
        ]


def decode_payloads(
    payloads: Iterable[str | tuple[str, str]], context: ErrorContext
) -> Iterator[Event]:
    """Events for a whole sequence of payloads (each a data string or ``(event, data)``).

    The stream always ends with one :class:`Done` or :class:`StreamError`.
    """
    decoder = StreamDecoder(context)
    for payload in payloads:
        event, data = payload if isinstance(payload, tuple) else ("message", payload)
        yield from decoder.feed(data, event)
        if decoder.finished:
            return
    yield from decoder.end()


def iter_response_events(response: "httpx.Response", decoder: StreamDecoder) -> Iterator[Event]:
    """Events from a streaming ``text/event-stream`` response, read until the stream ends.

    Transport errors propagate to the caller, which knows the URL and the timeouts and
    ends the stream with :meth:`StreamDecoder.fail`.
    """
    from httpx_sse import EventSource

    for sse in EventSource(response).iter_sse():
        yield from decoder.feed(sse.data, sse.event)
        if decoder.finished:
            return
    yield from decoder.end()


def events_from_completion(body: Mapping[str, Any], context: ErrorContext) -> list[Event]:
    """Events for a server that ignored ``stream: true`` and sent one JSON completion."""
    decoder = StreamDecoder(context)
    events = decoder.feed(json.dumps(body))
    if not decoder.finished:
        events += decoder.finish_now()
    return events
