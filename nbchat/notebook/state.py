"""What nbchat keeps for each IPython shell: its ``NbChat``, recorder, client, last result.

The extension (:mod:`nbchat.notebook.extension`) adds a shell here when it loads and
removes it when it unloads; the magics and the widget only read from here, so none of
them imports another to find the shell's client.

Each shell has one client. Its settings are rebuilt from ``NbChat`` every time it is
asked for, so ``%config`` changes apply to the next cell. Its default session is keyed
by the notebook's path when the kernel knows it (``__session__`` / ``JPY_SESSION_NAME``
in JupyterLab and Notebook, ``__vsc_ipynb_file__`` in VS Code), else by an id of this
kernel, so reopening a notebook finds its conversation again.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbchat.core.errors import ConfigError

if TYPE_CHECKING:
    from nbchat.client import ChatClient
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.cells import CellRecorder
    from nbchat.notebook.config import NbChat

__all__ = [
    "ShellState",
    "add_shell",
    "remove_shell",
    "is_loaded",
    "client_for",
    "config_for",
    "remember_result",
    "last_result",
    "notebook_key",
    "kernel_key",
]

_NOTEBOOK_VARIABLES = ("__session__", "__vsc_ipynb_file__")
EXTENSION_NAME = "nbchat"


@dataclass
class ShellState:
    """What the extension added to one shell (``magics`` is the registered instance)."""

    shell: Any
    config: "NbChat"
    magics: Any
    kernel_key: str
    recorder: "CellRecorder"
    client: "ChatClient | None" = None
    last_result: "TurnResult | None" = None


_SHELLS: dict[int, ShellState] = {}


def add_shell(state: ShellState) -> None:
    _SHELLS[id(state.shell)] = state


def remove_shell(shell: Any) -> ShellState | None:
    return _SHELLS.pop(id(shell), None)


def is_loaded(shell: Any) -> bool:
    state = _SHELLS.get(id(shell))
    return state is not None and state.shell is shell


def state_of(shell: Any) -> ShellState:
    """The shell's state, loading the extension through IPython when it is not loaded."""
    if not is_loaded(shell):
        manager = getattr(shell, "extension_manager", None)
        if manager is not None:
            manager.load_extension(EXTENSION_NAME)
    if not is_loaded(shell):
        raise ConfigError("nbchat is not loaded in this shell: run %load_ext nbchat first.")
    return _SHELLS[id(shell)]


def config_for(shell: Any) -> "NbChat":
    """The shell's ``NbChat`` configurable (loading the extension if needed)."""
    return state_of(shell).config


def client_for(shell: Any) -> "ChatClient":
    """The shell's client, with settings fresh from ``NbChat`` and the notebook's key."""
    from nbchat.client import ChatClient

    state = state_of(shell)
    settings = state.config.to_settings()
    key = notebook_key(shell, state.kernel_key)
    if state.client is None:
        state.client = ChatClient(settings, notebook=key)
    else:
        state.client.settings = settings
        if state.client.notebook != key:
            state.client.notebook = key
            state.client.session_id = None
    return state.client


def remember_result(shell: Any, result: "TurnResult") -> None:
    state_of(shell).last_result = result


def last_result(shell: Any) -> "TurnResult | None":
    """The last turn a magic sent from this shell (for notebooks that check it)."""
    state = _SHELLS.get(id(shell))
    return state.last_result if state is not None else None


def notebook_key(shell: Any, fallback: str | None = None) -> str:
    """The notebook's path when the kernel knows it, else ``fallback`` (a kernel id)."""
    namespace = getattr(shell, "user_ns", {}) or {}
    for variable in _NOTEBOOK_VARIABLES:
        value = namespace.get(variable)
        if isinstance(value, str) and value.strip():
            return value.strip()
    value = os.environ.get("JPY_SESSION_NAME", "")
    if value.strip():
        return value.strip()
    return fallback or kernel_key(shell)


def kernel_key(shell: Any) -> str:
    """This kernel's id (from its connection file), else a fresh id for this process."""
    owner = getattr(shell, "parent", None)
    for _ in range(3):  # the kernel app is the shell's parent, or (ipykernel 7) its parent
        connection_file = getattr(owner, "connection_file", None)
        if isinstance(connection_file, str) and connection_file:
            stem = os.path.splitext(os.path.basename(connection_file))[0]
            return stem if stem.startswith("kernel") else f"kernel-{stem}"
        owner = getattr(owner, "parent", None)
    return f"ipython-{os.getpid()}-{secrets.token_hex(3)}"
