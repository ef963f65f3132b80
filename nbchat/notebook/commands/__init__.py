"""The ``%chat`` subcommands, by theme: each is ``(shell, client, argv) -> output``.

:mod:`~nbchat.notebook.magics` parses the subcommand's name and calls the function
named in :data:`COMMANDS`; the functions parse their own arguments and print or return
what the cell shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbchat.notebook.commands import engine, files, sessions, status

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["COMMANDS", "Command"]

Command = Callable[[Any, "ChatClient", list[str]], Any]

COMMANDS: dict[str, Command] = {
    "status": status.status,
    "config": status.config,
    "sessions": sessions.sessions,
    "new": sessions.new,
    "use": sessions.use,
    "history": sessions.history,
    "fork": sessions.fork,
    "share": sessions.share,
    "files": files.files,
    "store": files.store,
    "stored": files.stored,
    "unstore": files.unstore,
    "forget": files.forget,
    "engine": engine.engine,
}
