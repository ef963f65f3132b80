"""llama.cpp's ``llama-server``: health check first, prompt cache on, exact token counts.

The server answers ``/health`` with 503 while it loads a model, so checking it before a
turn gives a clear "still loading" instead of a failed request. ``/props`` tells the
context size (``n_ctx``) the server really runs with, and ``/tokenize`` counts tokens
with the model's own tokenizer. A whole prompt is counted as the server will see it:
the messages through its chat template (``/apply-template``), then tokenized with the
special tokens it adds (``/tokenize``), which is ``prompt_n + cache_n`` of the request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbchat.backends.classify import classify_error
from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.core.errors import BackendError, BackendUnreachable, ConfigError
from nbchat.core.events import Message
from nbchat.core.settings import DEFAULT_LLAMA_URL

if TYPE_CHECKING:
    import httpx

__all__ = ["LlamaServerBackend", "LlamaTokenCounter", "DEFAULT_LLAMA_URL"]

_SHORT_TEXT_CHARS = 256
_SHORT_CACHE_ENTRIES = 4096
_PROMPT_CACHE_ENTRIES = 64


class LlamaTokenCounter:
    """Counts tokens with the server's ``/tokenize``; ``tokenizer_id`` names the model."""

    def __init__(self, backend: "LlamaServerBackend", tokenizer_id: str) -> None:
        self._backend = backend
        self.tokenizer_id = tokenizer_id
        # The core caches long texts by hash; short ones (headers, names) are cached here
        # so that they do not cost one HTTP request each.
        self._short_counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"LlamaTokenCounter(tokenizer_id={self.tokenizer_id!r})"

    def count(self, text: str) -> int:
        """The number of tokens of ``text`` (no special tokens added)."""
        if not text:
            return 0
        if len(text) > _SHORT_TEXT_CHARS:
            return self._backend.count_tokens(text)
        found = self._short_counts.get(text)
        if found is None:
            found = self._backend.count_tokens(text)
            if len(self._short_counts) >= _SHORT_CACHE_ENTRIES:
                self._short_counts.clear()
            self._short_counts[text] = found
        return found

    def count_prompt(self, messages: Sequence[Message]) -> int:
        """Tokens of the whole prompt the server builds from ``messages``."""
        return self._backend.count_prompt(messages)


class LlamaServerBackend(OpenAICompatBackend):
    """A llama-server at ``base_url`` (its root; a trailing ``/v1`` is tolerated).

    ``health_ttl_s`` is how long a good health check is trusted, so that one turn does
    not pay for it twice; ``health_timeout_s`` is how long the check may take.
    """

    name = "llama"
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"

    def __init__(
        self,
        base_url: str = DEFAULT_LLAMA_URL,
        api_key: str | None = None,
        default_model: str | None = None,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 600.0,
        health_ttl_s: float = 5.0,
        health_timeout_s: float = 10.0,
        transport: "httpx.BaseTransport | None" = None,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        super().__init__(
            root,
            api_key,
            default_model,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            transport=transport,
        )
        self.health_ttl_s = health_ttl_s
        self.health_timeout_s = health_timeout_s
        self._healthy_until = 0.0
        self._props: Mapping[str, Any] | None = None
        self._props_lock = threading.Lock()
        # Whole-prompt counts by the sha256 of the messages, newest last.
        self._prompt_counts: OrderedDict[str, int] = OrderedDict()
        self._prompt_lock = threading.Lock()

    @property
    def server_label(self) -> str:
        return f"{self.label} at {self.shown_url}"

    # -- readiness -------------------------------------------------------------------------

    def _not_running(self) -> BackendUnreachable:
        return BackendUnreachable(
            f"No llama-server is running at {self.shown_url}: start one with "
            "`%chat engine start` (or `nbchat engine start` in a terminal), or set "
            "NBCHAT_BASE_URL / c.NbChat.base_url."
        )

    def _unreachable(self, exc: Exception, url: str) -> BackendUnreachable:
        import httpx

        if isinstance(exc, httpx.ConnectTimeout):
            return super()._unreachable(exc, url)
        return self._not_running()

    def check_ready(self) -> None:
        """Raise a clear error unless the server is up and has its model loaded."""
        import httpx

        if time.monotonic() < self._healthy_until:
            return
        url = self._url("/health")
        timeout = httpx.Timeout(self.health_timeout_s, connect=self.connect_timeout)
        try:
            response = self._http().get(url, headers=self._headers(), timeout=timeout)
        except httpx.ConnectTimeout as exc:
            raise BackendUnreachable(
                f"llama-server at {self.shown_url} did not accept a connection within "
                f"{self.connect_timeout:g} s. Check that it is running and the address "
                "(NBCHAT_BASE_URL / c.NbChat.base_url).",
                kind="timeout",
            ) from exc
        except httpx.ConnectError as exc:
            raise self._not_running() from exc
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"llama-server at {self.shown_url} did not answer its health check within "
                f"{self.health_timeout_s:g} s. Try again; if it stays stuck, restart it "
                "with `%chat engine stop` and `%chat engine start`.",
                "timeout",
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._bad_url() from exc
        except httpx.TransportError as exc:
            raise self._not_running() from exc
        if response.status_code == 503:
            raise BackendError(
                f"llama-server at {self.shown_url} is still loading the model: try again "
                "in a few seconds.",
                "loading",
                status=503,
            )
        if response.status_code not in (200, 404):
            # 404: an OpenAI-compatible server without /health; let the request decide.
            raise classify_error(
                response.status_code,
                response.content,
                response.headers,
                self._error_context(self.default_model),
            )
        self._healthy_until = time.monotonic() + self.health_ttl_s

    def health(self) -> str:
        """``ok`` once the health check passes (it raises ``BackendError`` otherwise)."""
        self.check_ready()
        return "ok"

    def _before_request(self) -> None:
        self.check_ready()  # free when the client checked just before (health_ttl_s)

    def _chat_body(
        self,
        messages: Sequence[Message],
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        body = super()._chat_body(messages, model, max_tokens, temperature)
        body["cache_prompt"] = True
        # Progress chunks while a long prompt is read (llama.cpp's server only: another
        # server may refuse an unknown field, so the base class never sends it).
        body["return_progress"] = True
        return body

    # -- facts about the model -------------------------------------------------------------

    def props(self) -> Mapping[str, Any] | None:
        """The server's ``/props`` (cached once read), or None when it cannot be read."""
        with self._props_lock:
            if self._props is not None:
                return self._props
        try:
            response = self._request("GET", "/props")
            payload = response.json() if response.status_code == 200 else None
        except (BackendError, ConfigError, ValueError):
            return None
        if not isinstance(payload, Mapping):
            return None
        with self._props_lock:
            self._props = payload
        return payload

    def context_window(self, model: str | None = None) -> int | None:
        """``n_ctx`` the server runs with (per slot), from ``/props``."""
        props = self.props()
        if props is None:
            return None
        settings = props.get("default_generation_settings")
        candidates = [
            settings.get("n_ctx") if isinstance(settings, Mapping) else None,
            props.get("n_ctx"),
        ]
        for value in candidates:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def token_counter(self) -> LlamaTokenCounter | None:
        """An exact counter, or None when the server cannot be asked (the core estimates)."""
        props = self.props()
        if props is None:
            return None
        model_name = props.get("model_path") or props.get("model_alias") or self.shown_url
        return LlamaTokenCounter(self, f"llama:{model_name}")

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` according to the server's ``/tokenize``."""
        return len(self._tokenize({"content": text}))

    def count_prompt(self, messages: Sequence[Message]) -> int:
        """Tokens of the prompt a chat request with ``messages`` makes the server evaluate.

        The server's chat template renders the messages (``/apply-template``, with the
        turn markers and the generation prompt), and ``/tokenize`` counts the result
        with the special tokens parsed and the BOS added, as a chat request does: the
        count equals that request's ``prompt_n + cache_n``. Counts are cached by the
        sha256 of the messages.
        """
        plain = [dict(message) for message in messages]
        key = hashlib.sha256(
            json.dumps(plain, ensure_ascii=False, sort_keys=True).encode("utf-8", "surrogatepass")
        ).hexdigest()
        with self._prompt_lock:
            found = self._prompt_counts.get(key)
            if found is not None:
                self._prompt_counts.move_to_end(key)
                return found
        response = self._request("POST", "/apply-template", json_body={"messages": plain})
        self._raise_for(response)
        try:
            prompt = response.json().get("prompt")
        except (ValueError, AttributeError):
            prompt = None
        if not isinstance(prompt, str):
            raise BackendError(
                f"llama-server at {self.shown_url} sent no prompt from /apply-template.",
                "generic",
            )
        special = {"add_special": True, "parse_special": True}
        counted = len(self._tokenize({"content": prompt, **special}))
        with self._prompt_lock:
            self._prompt_counts[key] = counted
            while len(self._prompt_counts) > _PROMPT_CACHE_ENTRIES:
                self._prompt_counts.popitem(last=False)
        return counted

    def _tokenize(self, body: Mapping[str, Any]) -> list[Any]:
        """The token list of ``/tokenize`` for ``body``."""
        response = self._request("POST", "/tokenize", json_body=dict(body))
        self._raise_for(response)
        try:
            tokens = response.json().get("tokens")
        except (ValueError, AttributeError):
            tokens = None
        if not isinstance(tokens, list):
            raise BackendError(
                f"llama-server at {self.shown_url} sent no token list from /tokenize.",
                "generic",
            )
        return tokens

    def _raise_for(self, response: "httpx.Response") -> None:
        if response.status_code != 200:
            raise classify_error(
                response.status_code,
                response.content,
                response.headers,
                self._error_context(self.default_model),
            )
