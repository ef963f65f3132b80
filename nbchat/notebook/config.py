"""The ``NbChat`` configurable: ``%config NbChat.model = "..."`` and ``ipython_config.py``.

Every trait maps to a field of :class:`~nbchat.core.settings.Settings`. The server URL
and key traits are made from :data:`~nbchat.core.settings.BACKEND_INFO` (one per URL or
key setting a backend names), so a backend added there gets its traits. Traits left
at None fall back to the environment (``NBCHAT_BACKEND``, ``NBCHAT_MODEL``,
``NBCHAT_BASE_URL``, ``NBCHAT_OPENROUTER_URL``, ``NBCHAT_EMBEDDING_URL``,
``NBCHAT_DB``) and then to the built-in defaults. The two keys go the other way: their
variables (``OPENROUTER_API_KEY``, ``NBCHAT_OPENAI_API_KEY``) win over the traits.
``%chat config`` shows where each value comes from.

Each API key is held as a :class:`SecretText`, a ``str`` whose ``repr`` hides it: that
is what ``%config NbChat`` (``Current: ...``), ``%config NbChat.api_key`` and
tracebacks print.
"""

from __future__ import annotations

import os
from typing import Any, cast

from traitlets import Enum, Float, Int, Unicode
from traitlets.config import Configurable

from nbchat.core.settings import (
    BACKEND_INFO,
    BACKENDS,
    ENV_VARIABLES,
    MAX_TEMPERATURE,
    BackendInfo,
    Settings,
    database_location,
    env_variables,
    key_variables,
)

__all__ = ["NbChat", "SecretText", "SecretUnicode", "SETTING_TRAITS", "ENV_SOURCES"]

_DEFAULTS = Settings()

# Traits that fall back to an environment variable when unset (keys: whose variable wins).
ENV_SOURCES = ENV_VARIABLES

HIDDEN = "<hidden>"


class SecretText(str):
    """A string that never shows itself in a repr (the value is still the key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return HIDDEN

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(HIDDEN)


class SecretUnicode(Unicode):  # type: ignore[type-arg]
    """A ``Unicode`` trait whose value is a :class:`SecretText`."""

    info_text = "a secret string (never printed)"

    def validate(self, obj: Any, value: Any) -> Any:
        value = super().validate(obj, value)
        if value is None or isinstance(value, SecretText):
            return value
        return SecretText(value)

    def default_value_repr(self) -> str:
        return "None" if self.default_value is None else HIDDEN


def _by_setting(attribute: str) -> dict[str, list[BackendInfo]]:
    """The backends of each URL (or key) setting, in table order."""
    found: dict[str, list[BackendInfo]] = {}
    for info in BACKEND_INFO.values():
        setting = getattr(info, attribute)
        if setting is not None:
            found.setdefault(setting, []).append(info)
    return found


def _url_trait(infos: list[BackendInfo]) -> Unicode:  # type: ignore[type-arg]
    first = infos[0]
    labels = " or ".join(info.label for info in infos)
    engine = " `%chat engine start` sets it." if any(i.name == "llama" for i in infos) else ""
    return Unicode(
        None,
        allow_none=True,
        help=f"URL of the {labels}. None: {first.url_variable}, else {first.default_url}."
        + engine,
    ).tag(config=True)


def _key_trait(infos: list[BackendInfo]) -> SecretUnicode:
    first = infos[0]
    labels = " or ".join(f"the {info.label} (backend '{info.name}')" for info in infos)
    return SecretUnicode(
        None,
        allow_none=True,
        help=f"API key of {labels}, used when {first.key_variable} is not set (the "
        "variable wins). Sent to that server only; never printed.",
    ).tag(config=True)


URL_TRAITS = tuple(_by_setting("url_setting"))
KEY_TRAITS = tuple(_by_setting("key_setting"))


def _backend_traits() -> dict[str, Any]:
    """The URL and key traits, one per setting named in ``BACKEND_INFO``."""
    traits: dict[str, Any] = {
        name: _url_trait(infos) for name, infos in _by_setting("url_setting").items()
    }
    traits.update(
        {name: _key_trait(infos) for name, infos in _by_setting("key_setting").items()}
    )
    return traits


class NbChat(Configurable):
    """Settings of the ``%%chat`` / ``%chat`` magics (``%config NbChat`` lists them)."""

    backend = Enum(
        cast(Any, BACKENDS),  # live: a backend added to BACKEND_INFO later is accepted too
        default_value=None,
        allow_none=True,
        help="Model server: "
        + ", ".join(f"'{info.name}' ({info.label})" for info in BACKEND_INFO.values())
        + ". None: NBCHAT_BACKEND, else 'llama'.",
    ).tag(config=True)
    model = Unicode(
        None,
        allow_none=True,
        help="Model name sent to the server. None: NBCHAT_MODEL, else the server's "
        "default ('openrouter/auto' on OpenRouter).",
    ).tag(config=True)
    # The server URL and key traits, from BACKEND_INFO (the names are for readers).
    base_url: str | None
    openrouter_url: str | None
    api_key: str | None
    openai_api_key: str | None
    locals().update(_backend_traits())
    embedding_url = Unicode(
        None,
        allow_none=True,
        help="URL of a llama-server started with --embeddings, for searching past "
        "messages. None: NBCHAT_EMBEDDING_URL, else embeddings are off.",
    ).tag(config=True)
    db_path = Unicode(
        None,
        allow_none=True,
        help="The conversation database: a SQLite file, or a postgresql:// URL for the "
        "team store (needs nbchat[postgres]). None: NBCHAT_DB, else nbchat.sqlite in the "
        "user data folder.",
    ).tag(config=True)
    system_prompt = Unicode(
        _DEFAULTS.system_prompt,
        help="System prompt of new sessions (an existing session keeps its own).",
    ).tag(config=True)
    attachment_budget = Int(
        _DEFAULTS.attachment_budget,
        min=0,
        help="Tokens shared by all attachments of one prompt.",
    ).tag(config=True)
    history_files_budget = Int(
        _DEFAULTS.history_files_budget,
        min=0,
        help="Tokens for files from earlier turns re-included after the history was "
        "compacted.",
    ).tag(config=True)
    recall_budget = Int(
        _DEFAULTS.recall_budget,
        min=0,
        help="Tokens for relevant earlier messages found by search.",
    ).tag(config=True)
    max_tokens = Int(
        _DEFAULTS.max_tokens,
        min=1,
        help="Longest answer, in tokens (kept free in the context window).",
    ).tag(config=True)
    temperature = Float(
        None,
        allow_none=True,
        min=0.0,
        max=MAX_TEMPERATURE,
        help="Sampling temperature, from 0 to 2. None: the server's default.",
    ).tag(config=True)
    context_window = Int(
        None,
        allow_none=True,
        min=1,
        help="The model's context window in tokens. None: ask the server (8192 when it "
        "does not say).",
    ).tag(config=True)
    max_file_bytes = Int(
        _DEFAULTS.max_file_bytes,
        min=1,
        help="Largest file that may be attached, in bytes.",
    ).tag(config=True)
    max_inflated_bytes = Int(
        _DEFAULTS.max_inflated_bytes,
        min=1,
        help="Largest size an Office file (DOCX, XLSX, PPTX) may expand to when unpacked.",
    ).tag(config=True)
    request_timeout = Float(
        _DEFAULTS.request_timeout,
        min=1.0,
        help="Seconds to wait for the server to start answering (and between pieces).",
    ).tag(config=True)
    stream_update_interval = Float(
        _DEFAULTS.stream_update_interval,
        min=0.0,
        help="Seconds between redraws of a streaming answer.",
    ).tag(config=True)

    def to_settings(self) -> Settings:
        """The frozen settings of the next turn: these traits over the environment."""
        values: dict[str, Any] = {name: getattr(self, name) for name in SETTING_TRAITS}
        for name in KEY_TRAITS:
            key = values.pop(name)
            values[name] = str(key) if key else None  # a plain str from here on
        db_path = values.pop("db_path")
        values["db_path"] = database_location(db_path) if db_path else None
        return Settings.from_env(**values)

    def source_of(self, name: str) -> str:
        """Where the value of ``name`` comes from: 'NbChat', an env var, or 'default'."""
        key_variable = key_variables().get(name)
        if key_variable and os.environ.get(key_variable, "").strip():
            return key_variable  # a key's variable wins over the configuration
        if getattr(self, name) != self.trait_defaults(name):
            return "NbChat"
        env = env_variables().get(name)
        if env and os.environ.get(env):
            return env
        return "default"


SETTING_TRAITS = (
    "backend",
    "model",
    *URL_TRAITS,
    *KEY_TRAITS,
    "embedding_url",
    "db_path",
    "system_prompt",
    "attachment_budget",
    "history_files_budget",
    "recall_budget",
    "max_tokens",
    "temperature",
    "context_window",
    "max_file_bytes",
    "max_inflated_bytes",
    "request_timeout",
    "stream_update_interval",
)

