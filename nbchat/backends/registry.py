"""Pick the backend a :class:`~nbchat.core.settings.Settings` asks for."""

from __future__ import annotations

from nbchat.core.errors import ConfigError
from nbchat.core.events import Backend
from nbchat.core.settings import BACKENDS, Settings

__all__ = ["get_backend"]


def get_backend(settings: Settings, *, api_key: str | None = None) -> Backend:
    """A backend for ``settings.backend`` (``llama``, ``openrouter`` or ``openai``).

    Each backend gets only its own key (:attr:`Settings.backend_key`: the call's, else
    the environment's, else the configuration's); ``api_key`` is a key given with this
    call and wins over it. A local llama-server gets no key at all. The model is not
    part of a backend: every turn sends the one its settings name. Raises
    :class:`ConfigError` for an unknown backend or, for OpenRouter, when there is no
    key at all.
    """
    connect, request = settings.connect_timeout, settings.request_timeout
    key = api_key or settings.backend_key
    if settings.backend == "llama":
        from nbchat.backends.llama import LlamaServerBackend

        # An OpenRouter key must never reach a local server.
        return LlamaServerBackend(
            settings.resolved_base_url, None, connect_timeout=connect, request_timeout=request
        )
    if settings.backend == "openrouter":
        from nbchat.backends.openrouter import OpenRouterBackend

        return OpenRouterBackend(
            key, base_url=settings.resolved_base_url, connect_timeout=connect,
            request_timeout=request,
        )
    if settings.backend == "openai":
        from nbchat.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            settings.resolved_base_url, key, connect_timeout=connect, request_timeout=request
        )
    accepted = ", ".join(repr(name) for name in BACKENDS)
    raise ConfigError(
        f"Unknown backend {settings.backend!r}: use one of {accepted} "
        "(c.NbChat.backend or NBCHAT_BACKEND)."
    )
