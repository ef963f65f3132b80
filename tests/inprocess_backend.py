"""An in-process backend for core tests: the HTTP side has its own tests (tests/backends)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from nbchat.core.events import Done, Event, Message, StreamError, TextDelta, Usage


class ScriptedBackend:
    """Answers every request with ``answer`` in pieces, and remembers what it was sent."""

    name = "scripted"

    def __init__(self, answer: str = "An answer.", *, fail_after: int | None = None) -> None:
        self.answer = answer
        self.fail_after = fail_after
        self.requests: list[list[dict[str, str]]] = []
        self.closed = 0

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> Iterator[Event]:
        self.requests.append([dict(m) for m in messages])
        try:
            pieces = [self.answer[i : i + 4] for i in range(0, len(self.answer), 4)]
            for index, piece in enumerate(pieces):
                if self.fail_after is not None and index == self.fail_after:
                    yield StreamError("upstream", "The server went away.")
                    return
                yield TextDelta(piece)
            yield Usage(prompt_tokens=10, completion_tokens=len(pieces), timings={"prompt_n": 7})
            yield Done("stop")
        finally:
            self.closed += 1

    def context_window(self, model: str | None) -> int | None:
        return None

    def token_counter(self):
        return None

    def close(self) -> None:
        pass
