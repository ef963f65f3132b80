"""One frozen bag of settings passed down from the front end to the core and backends.

Values come, from weakest to strongest: defaults here, environment variables
(:func:`Settings.from_env`), the notebook's ``NbChat`` configuration, then per-call or
per-cell options (:meth:`Settings.replace`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Settings", "BACKENDS", "default_db_path", "DEFAULT_OPENROUTER_MODEL"]

BACKENDS = ("llama", "openrouter", "openai")
DEFAULT_OPENROUTER_MODEL = "openrouter/auto"
DEFAULT_LLAMA_URL = "http://127.0.0.1:8080"
DEFAULT_OPENROUTER_URL = "https://openrouter.ai/api/v1"


# Settings read from the environment, by field name.
ENV_VARIABLES = {
    "backend": "NBCHAT_BACKEND",
    "model": "NBCHAT_MODEL",
    "base_url": "NBCHAT_BASE_URL",
    "openrouter_url": "NBCHAT_OPENROUTER_URL",
    "openai_api_key": "NBCHAT_OPENAI_API_KEY",
    "embedding_url": "NBCHAT_EMBEDDING_URL",
    "db_path": "NBCHAT_DB",
}


def default_db_path() -> Path:
    """``NBCHAT_DB`` if set, else ``nbchat.sqlite`` in the platform's user data dir."""
    env = os.environ.get("NBCHAT_DB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("nbchat")) / "nbchat.sqlite"


@dataclass(frozen=True)
class Settings:
    """Everything one turn needs to know. ``api_key`` never appears in ``repr``."""

    backend: str = "llama"
    model: str | None = None
    base_url: str | None = None  # llama-server or an OpenAI-compatible server
    openrouter_url: str | None = None  # only to point OpenRouter elsewhere (tests, proxies)
    api_key: str | None = field(default=None, repr=False)  # OpenRouter's, from configuration
    openai_api_key: str | None = field(default=None, repr=False)  # for --backend openai
    embedding_url: str | None = None
    db_path: Path | None = None
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
        """Defaults, then ``NBCHAT_*`` environment variables, then ``overrides``."""
        env: dict[str, Any] = {
            name: os.environ[variable]
            for name, variable in ENV_VARIABLES.items()
            if os.environ.get(variable)
        }
        if "db_path" in env:
            env["db_path"] = Path(env["db_path"]).expanduser()
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the non-None ``changes`` applied."""
        return dataclasses.replace(
            self, **{k: v for k, v in changes.items() if v is not None}
        )

    @property
    def resolved_db_path(self) -> Path:
        return Path(self.db_path).expanduser() if self.db_path is not None else default_db_path()

    @property
    def resolved_base_url(self) -> str:
        """The server URL of this backend: each backend has its own setting.

        ``base_url`` never applies to OpenRouter, so a key is never sent to a local
        server by a cell that only switched the backend.
        """
        if self.backend == "openrouter":
            return (self.openrouter_url or DEFAULT_OPENROUTER_URL).rstrip("/")
        return (self.base_url or DEFAULT_LLAMA_URL).rstrip("/")
