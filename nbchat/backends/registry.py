"""Pick the backend a :class:`~nbchat.core.settings.Settings` asks for.

Every backend is found through its entry in
:data:`~nbchat.core.settings.BACKEND_INFO`: the entry names its class, which is imported
only when a turn needs it, and the class builds itself from the settings
(``from_settings``). Adding a backend adds no branch here.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbchat.core.errors import ConfigError
from nbchat.core.events import Backend
from nbchat.core.settings import BACKEND_INFO, BackendInfo, Settings

__all__ = ["get_backend", "backend_class"]


def backend_class(info: BackendInfo) -> Any:
    """The class an entry names (``"module:Class"``), imported now."""
    module_name, _, class_name = info.backend_class.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_backend(settings: Settings, *, api_key: str | None = None) -> Backend:
    """A backend for ``settings.backend`` (``llama``, ``openrouter``, ``openai``, ...).

    Each backend gets only its own key (:attr:`Settings.backend_key`: the call's, else
    the environment's, else the configuration's); ``api_key`` is a key given with this
    call and wins over it. A backend without a key setting (the local llama-server) gets
    no key at all. The model is not part of a backend: every turn sends the one its
    settings name. Raises :class:`ConfigError` for an unknown backend or, for a backend
    that needs one, when there is no key at all.
    """
    info = BACKEND_INFO.get(settings.backend)
    if info is None:
        accepted = ", ".join(repr(name) for name in BACKEND_INFO)
        raise ConfigError(
            f"Unknown backend {settings.backend!r}: use one of {accepted} "
            "(c.NbChat.backend or NBCHAT_BACKEND)."
        )
    key = (api_key or settings.backend_key) if info.key_setting is not None else None
    backend: Backend = backend_class(info).from_settings(settings, info, key)
    return backend
