"""nbchat: a chat assistant inside Jupyter.

``%load_ext nbchat`` registers the ``%%chat`` and ``%chat`` magics. The Python API
(:func:`chat`, :func:`iter_chat`, :func:`dry_run`, :class:`ChatWidget`) is imported
lazily, so loading the extension stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "chat",
    "iter_chat",
    "dry_run",
    "ChatWidget",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_LAZY = {
    "chat": "nbchat.api",
    "iter_chat": "nbchat.api",
    "dry_run": "nbchat.api",
    "ChatWidget": "nbchat.notebook.widget",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nbchat' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (called by ``%load_ext nbchat``)."""
    from nbchat.notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove every magic and hook that loading added (``%unload_ext nbchat``)."""
    from nbchat.notebook.extension import unload

    unload(ipython)
