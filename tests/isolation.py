"""Keeping tests out of the user's folders: the environment every test and kernel gets.

A test sees none of the developer's nbchat settings (every ``NBCHAT_*`` variable and
``OPENROUTER_API_KEY`` are cleared), a database of its own (``NBCHAT_DB``), and a cache
folder of its own (``NBCHAT_CACHE_DIR``), so the engine logs and state files of the
engines it starts stay in its folder. The cache folder's ``models`` is a link to the
user's model folder: the 253 MB model is assembled once per machine and shared, the one
thing a test run may add to the user's cache. Kernels and subprocesses inherit all this.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CLEARED_VARIABLES", "shared_model_dir", "isolated_environment"]

# Besides every NBCHAT_* variable.
CLEARED_VARIABLES = ("OPENROUTER_API_KEY",)


def shared_model_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's model folder (``<cache>/models``), as the developer's environment says."""
    environ = os.environ if environ is None else environ
    configured = environ.get("NBCHAT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("nbchat")) / "models"


def isolated_environment(
    folder: Path, models: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """The changes that isolate a test (or a kernel) in ``folder``: name -> value, or None
    for a variable to remove. Creates ``folder/nbchat-cache`` with ``models`` linked to ``models``.
    """
    environ = os.environ if environ is None else environ
    cache = folder / "nbchat-cache"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / "models"
    if not link.is_symlink():
        models.mkdir(parents=True, exist_ok=True)  # the model is assembled there, once
        link.symlink_to(models, target_is_directory=True)
    changes: dict[str, str | None] = {
        name: None for name in environ if name.startswith("NBCHAT_") or name in CLEARED_VARIABLES
    }
    changes["NBCHAT_DB"] = str(folder / "nbchat.sqlite")
    changes["NBCHAT_CACHE_DIR"] = str(cache)
    return changes
