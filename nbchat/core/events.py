"""What a backend stream yields, and the protocol every backend follows.

A backend turns a list of chat messages into a stream of small frozen events. The
turn runner (``nbchat.core.turn``) consumes them, stores the result, and passes them on
to whatever front end renders them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

__all__ = [
    "Message",
    "TextDelta",
    "PromptProgress",
    "Usage",
    "Done",
    "StreamError",
    "Event",
    "Backend",
    "BackendDescription",
    "TokenCounter",
    "PromptCounter",
]

# An OpenAI-style chat message: {"role": "system"|"user"|"assistant", "content": str}.
Message = Mapping[str, str]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, in arrival order."""

    text: str


@dataclass(frozen=True)
class PromptProgress:
    """How far the server has read the prompt, before the first token (llama-server).

    Counts are of this request's prompt; ``cached_tokens`` of it came from the server's
    cache and are not read again. ``elapsed_ms`` is the server's reading time so far.
    A front end shows :meth:`describe` while :attr:`worth_showing`, and removes it at
    the first :class:`TextDelta`: a short prompt is read before anyone would notice,
    so it shows nothing.
    """

    processed_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    elapsed_ms: float = 0.0

    SHOW_AFTER_MS = 1000.0

    @property
    def read_tokens(self) -> int:
        return max(0, self.processed_tokens - self.cached_tokens)

    @property
    def to_read_tokens(self) -> int:
        return max(0, self.total_tokens - self.cached_tokens)

    @property
    def worth_showing(self) -> bool:
        """Reading has taken over a second and is not finished."""
        return self.elapsed_ms >= self.SHOW_AFTER_MS and self.read_tokens < self.to_read_tokens

    def describe(self) -> str:
        return f"reading the prompt: {self.read_tokens:,} / {self.to_read_tokens:,} tokens"


@dataclass(frozen=True)
class Usage:
    """Token usage and server timings, as reported at the end of a stream.

    ``timings`` holds llama.cpp's ``timings`` object (``prompt_n``, ``cache_n``,
    ``predicted_n``, ``predicted_per_second``, ...) when the server sent one.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost: float | None = None
    timings: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The usage as a plain dict, without empty fields (for JSON storage)."""
        data: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cost": self.cost,
        }
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Done:
    """The stream ended normally; ``finish_reason`` is the server's (``stop``, ``length``...)."""

    finish_reason: str = "stop"


@dataclass(frozen=True)
class StreamError:
    """The stream failed; the text received so far is kept by the caller.

    ``kind`` uses the vocabulary of :class:`nbchat.core.errors.BackendError`.
    """

    kind: str
    message: str
    retry_after: float | None = None


Event = Union[TextDelta, PromptProgress, Usage, Done, StreamError]


class TokenCounter(Protocol):
    """Counts tokens of a text; ``tokenizer_id`` names the tokenizer for cache keys."""

    @property
    def tokenizer_id(self) -> str: ...

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class BackendDescription:
    """Where a backend sends turns, for headers and status lines (no I/O to make).

    ``label`` is the kind of server ("llama-server", "OpenRouter"); ``server`` names this
    one in messages ("llama-server at http://127.0.0.1:8080"); ``url`` is the address
    turns go to, without credentials; ``model`` the model sent when a turn names none.
    """

    name: str
    label: str
    server: str
    url: str
    model: str | None = None


class PromptCounter(TokenCounter, Protocol):
    """A counter that also counts a whole prompt as its server builds it from messages
    (chat template and special tokens included); llama-server's counter is one."""

    def count_prompt(self, messages: Sequence[Message]) -> int: ...


class Backend(Protocol):
    """A chat model server.

    ``check_ready`` raises :class:`~nbchat.core.errors.BackendError` unless the server
    can take a turn now; the client calls it once per turn, before anything is stored
    (a backend with nothing to check does nothing). ``describe`` says where turns go.
    ``stream`` yields events and always ends with exactly one :class:`Done` or
    :class:`StreamError` (it may raise :class:`~nbchat.core.errors.BackendError` before
    the first event when the request is refused outright). Closing the iterator closes
    the HTTP response.
    """

    name: str

    def check_ready(self) -> None: ...

    def describe(self) -> BackendDescription: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> Iterator[Event]: ...

    def context_window(self, model: str | None) -> int | None:
        """The model's context length in tokens, or None when the server does not say."""
        ...

    def token_counter(self) -> TokenCounter | None:
        """An exact counter from the server's tokenizer, or None when there is none."""
        ...

    def close(self) -> None: ...
