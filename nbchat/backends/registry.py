"""Pick the backend a :class:`~nbchat.core.settings.Settings` asks for."""

from __future__ import annotations

from nbchat.core.errors import ConfigError
from nbchat.core.events import Backend
from nbchat.core.settings import BACKENDS, Settings

__all__ = ["get_backend"]


def get_backend(settings: Settings, *, api_key: str | None = None) -> Backend:
    """A backend for ``settings.backend`` (``llama``, ``openrouter`` or ``openai``).

    ``api_key`` is an OpenRouter key given with the call; it wins over the environment,
    which wins over ``settings.api_key`` (the configuration). Only OpenRouter gets that
    key; an OpenAI-compatible server gets ``settings.openai_api_key``. Raises :class:`ConfigError` for an
    unknown backend or, for OpenRouter, when there is no key at all.
    """
    timeouts = {
        "connect_timeout": settings.connect_timeout,
        "request_timeout": settings.request_timeout,
    }
    if settings.backend == "llama":
        from nbchat.backends.llama import LlamaServerBackend

        return LlamaServerBackend(
            settings.resolved_base_url,
            None,  # an OpenRouter key must never reach a local server
            settings.model,
            **timeouts,
        )
    if settings.backend == "openrouter":
        from nbchat.backends.openrouter import OpenRouterBackend

        return OpenRouterBackend(
            api_key,
            config_api_key=settings.api_key,
            base_url=settings.resolved_base_url,
            default_model=settings.model,
            **timeouts,
        )
    if settings.backend == "openai":
        from nbchat.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            settings.resolved_base_url,
            settings.openai_api_key,
            settings.model,
            **timeouts,
        )
    accepted = ", ".join(repr(name) for name in BACKENDS)
    raise ConfigError(
        f"Unknown backend {settings.backend!r}: use one of {accepted} "
        "(c.NbChat.backend or NBCHAT_BACKEND)."
    )
