"""Loading and unloading the extension.

``load`` registers the ``%%chat`` / ``%chat`` magics, the ``NbChat`` configurable and
the hooks that record failing cells and displays (:mod:`nbchat.notebook.cells`), and
keeps them in the shell's state (:mod:`nbchat.notebook.state`); ``unload`` removes
exactly what ``load`` added. Loading twice changes nothing.

The state's readers (``client_for``, ``config_for``, ``last_result``...) are imported
here too, for notebooks that use them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from nbchat.notebook.cells import recorder_for
from nbchat.notebook.state import (
    ShellState,
    add_shell,
    client_for,
    config_for,
    is_loaded,
    kernel_key,
    last_result,
    notebook_key,
    remember_result,
    remove_shell,
)

if TYPE_CHECKING:
    from nbchat.notebook.config import NbChat

__all__ = ["load", "unload", "is_loaded", "client_for", "config_for", "notebook_key", "last_result",
           "recorder_for", "remember_result"]

MAGIC_NAME = "chat"


def load(shell: Any) -> None:
    """Register the magics and ``NbChat`` on ``shell`` (a second call does nothing)."""
    if is_loaded(shell):
        return
    from nbchat.notebook.cells import CellRecorder
    from nbchat.notebook.magics import ChatMagics

    config = _configurable(shell)
    shell.configurables.append(config)
    magics = ChatMagics(shell)
    shell.register_magics(magics)
    recorder = CellRecorder(shell)
    recorder.attach()
    add_shell(ShellState(shell, config, magics, kernel_key(shell), recorder))


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
    state = remove_shell(shell)
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
