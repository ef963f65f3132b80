"""Loading and unloading the extension, and the one :class:`ChatClient` of each shell.

``load`` registers the ``%%chat`` / ``%chat`` magics, the ``NbChat`` configurable and
the hooks that record failing cells and displays (:mod:`nbchat.notebook.cells`);
``unload`` removes exactly what ``load`` added. Loading twice changes nothing.

Each shell has one client. Its settings are rebuilt from ``NbChat`` every time a magic
runs, so ``%config`` changes apply to the next cell. Its default session is keyed by
the notebook's path when the kernel knows it (``__session__`` / ``JPY_SESSION_NAME`` in
JupyterLab and Notebook, ``__vsc_ipynb_file__`` in VS Code), else by an id of this
kernel, so reopening a notebook finds its conversation again.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbchat.api import ChatClient
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.cells import CellRecorder
    from nbchat.notebook.config import NbChat

__all__ = ["load", "unload", "is_loaded", "client_for", "config_for", "notebook_key", "last_result",
           "recorder_for"]

MAGIC_NAME = "chat"
_NOTEBOOK_VARIABLES = ("__session__", "__vsc_ipynb_file__")


@dataclass
class _Loaded:
    """What ``load`` added to one shell."""

    shell: Any
    config: "NbChat"
    magics: Any
    kernel_key: str
    recorder: "CellRecorder"
    client: "ChatClient | None" = None
    last_result: "TurnResult | None" = None


_LOADED: dict[int, _Loaded] = {}


def load(shell: Any) -> None:
    """Register the magics and ``NbChat`` on ``shell`` (a second call does nothing)."""
    if id(shell) in _LOADED and _LOADED[id(shell)].shell is shell:
        return
    from nbchat.notebook.cells import CellRecorder
    from nbchat.notebook.magics import ChatMagics

    config = _configurable(shell)
    shell.configurables.append(config)
    magics = ChatMagics(shell)
    shell.register_magics(magics)
    recorder = CellRecorder(shell)
    recorder.attach()
    _LOADED[id(shell)] = _Loaded(shell, config, magics, _kernel_key(shell), recorder)


def _configurable(shell: Any) -> "NbChat":
    """``NbChat`` with the shell's configuration, minus the values its traits reject.

    ``%config NbChat.max_tokens = 0`` is refused by the trait but stays recorded in the
    shell's configuration, where it would make every later load fail. Such a value is
    dropped from there, and named in one line; the setting keeps its default.
    """
    from traitlets import TraitError

    from nbchat.core.settings import key_variables
    from nbchat.notebook.config import NbChat

    section = shell.config.get("NbChat") if "NbChat" in shell.config else None
    if section:
        probe = NbChat()
        for name in list(section):
            if not probe.has_trait(name):
                continue  # traitlets itself warns about an unknown name
            try:
                setattr(probe, name, section[name])
            except TraitError as error:
                value = section.pop(name)
                if name in key_variables():  # a key's value is never printed
                    line = f"nbchat: ignored NbChat.{name} (not a string); it stays unset."
                else:
                    reason = " ".join(str(error).split()).rstrip(".")
                    line = (
                        f"nbchat: ignored NbChat.{name} = {value!r} ({reason}); it stays "
                        f"{getattr(probe, name)!r}."
                    )
                print(line, file=sys.stderr)
    return NbChat(parent=shell)


def unload(shell: Any) -> None:
    """Remove the magics, the configurable and the client that ``load`` created."""
    state = _LOADED.pop(id(shell), None)
    if state is None:
        return
    manager = shell.magics_manager
    for kind in ("line", "cell"):
        registered = manager.magics[kind].get(MAGIC_NAME)
        if getattr(registered, "__self__", None) is state.magics:
            del manager.magics[kind][MAGIC_NAME]
    name = type(state.magics).__name__
    if manager.registry.get(name) is state.magics:
        del manager.registry[name]
    if state.config in shell.configurables:
        shell.configurables.remove(state.config)
    state.recorder.detach()
    if state.client is not None:
        state.client.close()


def is_loaded(shell: Any) -> bool:
    return id(shell) in _LOADED


def _state(shell: Any) -> _Loaded:
    if id(shell) not in _LOADED:
        load(shell)
    return _LOADED[id(shell)]


def config_for(shell: Any) -> "NbChat":
    """The shell's ``NbChat`` configurable (loading the extension if needed)."""
    return _state(shell).config


def client_for(shell: Any) -> "ChatClient":
    """The shell's client, with settings fresh from ``NbChat`` and the notebook's key."""
    from nbchat.api import ChatClient

    state = _state(shell)
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


def recorder_for(shell: Any) -> "CellRecorder | None":
    """What the extension records of this shell's cells (``None`` when not loaded)."""
    state = _LOADED.get(id(shell))
    return state.recorder if state is not None and state.shell is shell else None


def remember_result(shell: Any, result: "TurnResult") -> None:
    _state(shell).last_result = result


def last_result(shell: Any) -> "TurnResult | None":
    """The last turn a magic sent from this shell (for notebooks that check it)."""
    state = _LOADED.get(id(shell))
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
    return fallback or _kernel_key(shell)


def _kernel_key(shell: Any) -> str:
    """This kernel's id (from its connection file), else a fresh id for this process."""
    owner = getattr(shell, "parent", None)
    for _ in range(3):  # the kernel app is the shell's parent, or (ipykernel 7) its parent
        connection_file = getattr(owner, "connection_file", None)
        if isinstance(connection_file, str) and connection_file:
            stem = os.path.splitext(os.path.basename(connection_file))[0]
            return stem if stem.startswith("kernel") else f"kernel-{stem}"
        owner = getattr(owner, "parent", None)
    return f"ipython-{os.getpid()}-{secrets.token_hex(3)}"
