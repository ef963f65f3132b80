"""One frozen bag of settings passed down from the front end to the core and backends.

Values come, from weakest to strongest: defaults here, environment variables
(:func:`Settings.from_env`), the notebook's ``NbChat`` configuration, then per-call or
per-cell options (:meth:`Settings.replace`). API keys are the exception: a key's
environment variable wins over the configuration (the environment is where keys
normally live), and a key given with the call wins over both.

:data:`BACKEND_INFO` describes each backend once (its address setting, key setting and
variable, default model, label, class); the ``NbChat`` traits, key lookup, redaction,
labels, error hints and the backend registry derive from it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbchat.core.errors import ConfigError

__all__ = [
    "Settings",
    "BackendInfo",
    "BACKEND_INFO",
    "BACKENDS",
    "ENV_VARIABLES",
    "KEY_VARIABLES",
    "env_variables",
    "key_variables",
    "default_db_path",
    "database_location",
    "DEFAULT_OPENROUTER_MODEL",
    "MAX_TEMPERATURE",
    "check_turn_settings",
]

DEFAULT_OPENROUTER_MODEL = "openrouter/auto"
DEFAULT_LLAMA_URL = "http://127.0.0.1:8080"
DEFAULT_OPENROUTER_URL = "https://openrouter.ai/api/v1"
MAX_TEMPERATURE = 2.0  # the range OpenAI and OpenRouter accept: 0 to 2


@dataclass(frozen=True)
class BackendInfo:
    """Everything the rest of nbchat needs to know about one backend, said once.

    ``url_setting`` and ``key_setting`` are names of :class:`Settings` fields (and of the
    ``NbChat`` traits made from this table); ``url_variable`` and ``key_variable`` are
    their environment variables. ``label`` is how messages and the panel name the
    server. ``default_model`` is sent when no model is set (None: the server picks).
    ``backend_class`` is ``"module:Class"`` of the implementation, imported only when a
    turn needs it; the class is built by its ``from_settings`` classmethod. The key is
    what is redacted from every output (:attr:`Settings.secrets`).

    Adding a backend: its module (and its decoder if its wire format differs), and one
    entry in :data:`BACKEND_INFO`.
    """

    name: str
    label: str
    backend_class: str
    url_setting: str
    url_variable: str
    default_url: str
    key_setting: str | None = None
    key_variable: str | None = None
    default_model: str | None = None
    # Hints for error messages (nbchat.backends.classify): where the model list and the
    # credits page are, what a free model's id looks like, whether many providers stand
    # behind the server (another model may work), the server option for a larger context.
    models_url: str | None = None
    credits_url: str | None = None
    free_model_hint: str | None = None
    routes_providers: bool = False
    context_option: str | None = None

    @property
    def url_hint(self) -> str:
        """Where a user sets this backend's address, for messages."""
        return f"c.NbChat.{self.url_setting} or {self.url_variable}"

    @property
    def key_hint(self) -> str:
        """Where a user sets this backend's key, for messages ('' when it takes none)."""
        if self.key_setting is None:
            return ""
        return f"{self.key_variable} or c.NbChat.{self.key_setting}"


BACKEND_INFO: dict[str, BackendInfo] = {
    "llama": BackendInfo(
        "llama", "llama-server", "nbchat.backends.llama:LlamaServerBackend",
        "base_url", "NBCHAT_BASE_URL", DEFAULT_LLAMA_URL, context_option="-c",
    ),
    "openrouter": BackendInfo(
        "openrouter", "OpenRouter", "nbchat.backends.openrouter:OpenRouterBackend",
        "openrouter_url", "NBCHAT_OPENROUTER_URL", DEFAULT_OPENROUTER_URL,
        key_setting="api_key", key_variable="OPENROUTER_API_KEY",
        default_model=DEFAULT_OPENROUTER_MODEL, models_url="https://openrouter.ai/models",
        credits_url="https://openrouter.ai/settings/credits",
        free_model_hint="an id ending in ':free'", routes_providers=True,
    ),
    "openai": BackendInfo(
        "openai", "OpenAI-compatible server", "nbchat.backends.openai_compat:OpenAICompatBackend",
        "base_url", "NBCHAT_BASE_URL", DEFAULT_LLAMA_URL,
        key_setting="openai_api_key", key_variable="NBCHAT_OPENAI_API_KEY",
    ),
}
# The backend names, live: a backend registered later is accepted everywhere.
BACKENDS = BACKEND_INFO.keys()


def key_variables() -> dict[str, str]:
    """Each key setting's environment variable (it wins over the configuration)."""
    return {
        info.key_setting: info.key_variable
        for info in BACKEND_INFO.values()
        if info.key_setting and info.key_variable
    }


def env_variables() -> dict[str, str]:
    """Settings read from the environment, by field name (keys included)."""
    urls = {info.url_setting: info.url_variable for info in BACKEND_INFO.values()}
    return {**_PLAIN_ENV_VARIABLES, **urls, **key_variables()}


_PLAIN_ENV_VARIABLES = {
    "backend": "NBCHAT_BACKEND",
    "model": "NBCHAT_MODEL",
    "embedding_url": "NBCHAT_EMBEDDING_URL",
    "db_path": "NBCHAT_DB",
}
# Snapshots of the two functions above, for readers of the built-in table.
KEY_VARIABLES = key_variables()
ENV_VARIABLES = env_variables()


def database_location(value: str | Path) -> Path | str:
    """A database setting as nbchat uses it: a ``postgresql://`` URL stays text (it
    selects the PostgreSQL store), anything else is a SQLite file's path.

    A URL that went through ``Path`` lost one slash of its ``//``: it is put back.
    """
    text = str(value).strip() if isinstance(value, str) else str(value)
    for scheme in ("postgresql:", "postgres:"):
        if text.lower().startswith(scheme + "/"):
            rest = text[len(scheme):].lstrip("/")
            return f"{scheme}//{rest}"
    return Path(value).expanduser()


def default_db_path() -> Path | str:
    """``NBCHAT_DB`` if set, else ``nbchat.sqlite`` in the platform's user data dir."""
    env = os.environ.get("NBCHAT_DB")
    if env:
        return database_location(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("nbchat")) / "nbchat.sqlite"


@dataclass(frozen=True)
class Settings:
    """Everything one turn needs to know. ``api_key`` never appears in ``repr``."""

    backend: str = "llama"
    model: str | None = None
    base_url: str | None = None  # llama-server or an OpenAI-compatible server
    openrouter_url: str | None = None  # only to point OpenRouter elsewhere (tests, proxies)
    # Keys in effect: the call's, else the environment's, else the configuration's.
    api_key: str | None = field(default=None, repr=False)  # OpenRouter's
    openai_api_key: str | None = field(default=None, repr=False)  # for --backend openai
    embedding_url: str | None = None
    # A SQLite file, or a postgresql:// URL (repr hides it: a URL may hold a password).
    db_path: Path | str | None = field(default=None, repr=False)
    system_prompt: str = "You are a helpful assistant working inside a Jupyter notebook."
    attachment_budget: int = 64_000
    history_files_budget: int = 32_000
    recall_budget: int = 4_000
    max_tokens: int = 1024
    temperature: float | None = None
    context_window: int | None = None
    max_file_bytes: int = 50 * 1024 * 1024
    max_inflated_bytes: int = 512 * 1024 * 1024
    request_timeout: float = 600.0
    connect_timeout: float = 5.0
    stream_update_interval: float = 0.05

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Defaults, then environment variables, then ``overrides`` (the configuration).

        A key's environment variable (``OPENROUTER_API_KEY``, ``NBCHAT_OPENAI_API_KEY``)
        wins over the configuration's key.
        """
        values: dict[str, Any] = {
            name: os.environ[variable]
            for name, variable in env_variables().items()
            if os.environ.get(variable)
        }
        if "db_path" in values:
            values["db_path"] = database_location(values["db_path"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name, variable in key_variables().items():
            if os.environ.get(variable, "").strip():
                values[name] = os.environ[variable]
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the non-None ``changes`` applied."""
        return dataclasses.replace(
            self, **{k: v for k, v in changes.items() if v is not None}
        )

    @property
    def resolved_db_path(self) -> Path | str:
        """The SQLite file or the ``postgresql://`` URL of the database in use."""
        if self.db_path is None:
            return default_db_path()
        return database_location(self.db_path)

    @property
    def info(self) -> BackendInfo | None:
        """The description of this backend (None for an unknown name)."""
        return BACKEND_INFO.get(self.backend)

    @property
    def resolved_model(self) -> str | None:
        """The model a turn sends: the setting, else the backend's default (None: the
        server's own)."""
        if self.model:
            return self.model
        return self.info.default_model if self.info is not None else None

    @property
    def backend_key(self) -> str | None:
        """The key this backend sends: the settings' own, else its environment variable
        (settings made without :meth:`from_env`); None for a backend without a key."""
        info = self.info
        if info is None or info.key_setting is None:
            return None
        for key in (getattr(self, info.key_setting), os.environ.get(info.key_variable or "")):
            if key and key.strip():
                return str(key).strip()
        return None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every key these settings hold or can send, for redaction: each backend's key
        setting and its variable (derived from :data:`BACKEND_INFO`, so none is missed)."""
        found: list[str] = []
        for info in BACKEND_INFO.values():
            if info.key_setting is None:
                continue
            for value in (getattr(self, info.key_setting, None),
                          os.environ.get(info.key_variable or "")):
                if value and str(value).strip() and str(value) not in found:
                    found.append(str(value))
        return tuple(found)

    @property
    def resolved_base_url(self) -> str:
        """The server URL of this backend: each backend has its own setting.

        ``base_url`` never applies to OpenRouter, so a key is never sent to a local
        server by a cell that only switched the backend.
        """
        info = self.info or BACKEND_INFO["llama"]
        return str(getattr(self, info.url_setting) or info.default_url).rstrip("/")


def check_turn_settings(settings: Settings) -> None:
    """Refuse values no server should receive, before anything is sent or stored."""
    if settings.max_tokens < 1:
        raise ConfigError(
            f"max_tokens must be at least 1 (got {settings.max_tokens}): it is the longest "
            "answer, in tokens."
        )
    temperature = settings.temperature
    if temperature is not None and not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ConfigError(
            f"The temperature must be between 0 and {MAX_TEMPERATURE:g} (got {temperature:g}): "
            "0 is the most predictable, 1 the usual, 2 the most random."
        )
