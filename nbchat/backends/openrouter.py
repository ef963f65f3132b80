"""OpenRouter: one key, many hosted models, the OpenAI wire format.

The key comes from the call, then ``OPENROUTER_API_KEY``, then the configuration; with
none, construction fails before anything is sent. The key is kept in one private
attribute, sent only in the ``Authorization`` header, and masked in every message.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, ClassVar

from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.core.errors import ConfigError
from nbchat.core.settings import BACKEND_INFO, DEFAULT_OPENROUTER_MODEL, DEFAULT_OPENROUTER_URL

if TYPE_CHECKING:
    import httpx

    from nbchat.core.settings import BackendInfo, Settings

__all__ = [
    "OpenRouterBackend",
    "DEFAULT_OPENROUTER_URL",
    "DEFAULT_OPENROUTER_MODEL",
    "resolve_openrouter_key",
]

# OpenRouter shows these to identify the calling app; they carry nothing private.
APP_HEADERS = {"HTTP-Referer": "https://pypi.org/project/nbchat/", "X-Title": "nbchat"}


def resolve_openrouter_key(
    call_key: str | None = None, config_key: str | None = None
) -> str | None:
    """The key to use: the call's, then ``OPENROUTER_API_KEY``, then the configuration's."""
    variable = BACKEND_INFO["openrouter"].key_variable or ""
    for key in (call_key, os.environ.get(variable), config_key):
        if key and key.strip():
            return key.strip()
    return None


class OpenRouterBackend(OpenAICompatBackend):
    """Streams from OpenRouter (or a server standing in for it at ``base_url``)."""

    name = "openrouter"
    # Model listings are large and change rarely: read once per process and base URL.
    _listings: ClassVar[dict[str, dict[str, int | None]]] = {}
    _listings_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        api_key: str | None = None,
        *,
        config_api_key: str | None = None,
        base_url: str | None = None,
        default_model: str | None = None,
        connect_timeout: float = 5.0,
        request_timeout: float = 600.0,
        transport: "httpx.BaseTransport | None" = None,
    ) -> None:
        key = resolve_openrouter_key(api_key, config_api_key)
        if key is None:
            hint = BACKEND_INFO["openrouter"].key_hint.replace(" or ", ", or ")
            raise ConfigError(f"No OpenRouter API key: set {hint}, or pass api_key=…")
        super().__init__(
            base_url or DEFAULT_OPENROUTER_URL,
            key,
            default_model or DEFAULT_OPENROUTER_MODEL,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            extra_headers=APP_HEADERS,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: "Settings", info: "BackendInfo", api_key: str | None
    ) -> "OpenRouterBackend":
        """The backend of the ``openrouter`` entry (the key is required)."""
        return cls(
            api_key,
            base_url=settings.resolved_base_url,
            default_model=info.default_model,
            connect_timeout=settings.connect_timeout,
            request_timeout=settings.request_timeout,
        )

    @property
    def server_label(self) -> str:
        if self.base_url == BACKEND_INFO["openrouter"].default_url:
            return self.label
        return f"{self.label} at {self.shown_url}"

    @classmethod
    def forget_model_listings(cls) -> None:
        """Drop the cached model listings (they are read again when next needed)."""
        with cls._listings_lock:
            cls._listings.clear()

    def _model_listing(self) -> dict[str, int | None] | None:
        with self._listings_lock:
            cached = self._listings.get(self.base_url)
        if cached is not None:
            return cached
        listing = self._fetch_model_listing()
        if listing:
            with self._listings_lock:
                self._listings[self.base_url] = listing
        return listing
