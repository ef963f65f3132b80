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
        env: dict[str, Any] = {}
        if os.environ.get("NBCHAT_BACKEND"):
            env["backend"] = os.environ["NBCHAT_BACKEND"]
        if os.environ.get("NBCHAT_MODEL"):
            env["model"] = os.environ["NBCHAT_MODEL"]
        if os.environ.get("NBCHAT_BASE_URL"):
            env["base_url"] = os.environ["NBCHAT_BASE_URL"]
        if os.environ.get("NBCHAT_OPENROUTER_URL"):
            env["openrouter_url"] = os.environ["NBCHAT_OPENROUTER_URL"]
        if os.environ.get("NBCHAT_OPENAI_API_KEY"):
            env["openai_api_key"] = os.environ["NBCHAT_OPENAI_API_KEY"]
        if os.environ.get("NBCHAT_EMBEDDING_URL"):
            env["embedding_url"] = os.environ["NBCHAT_EMBEDDING_URL"]
        if os.environ.get("NBCHAT_DB"):
            env["db_path"] = Path(os.environ["NBCHAT_DB"]).expanduser()
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
