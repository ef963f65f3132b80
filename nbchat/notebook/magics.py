"""The ``%%chat`` and ``%chat`` magics: parse the line, then hand over.

``%%chat`` sends the cell body as the prompt, exactly as written
(:mod:`~nbchat.notebook.cellturn` drives the turn). ``%chat`` is everything around the
conversation (sessions, files, status, the local engine): the subcommands live in
:mod:`nbchat.notebook.commands`, by theme.

Errors meant for the user (:class:`~nbchat.core.errors.NbChatError`) become IPython's
``UsageError``: the cell fails and shows the message alone, no traceback. Anything else
keeps its traceback.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from nbchat.core.settings import BACKENDS
from nbchat.notebook.cells import notebook_text
from nbchat.notebook.commands import COMMANDS
from nbchat.notebook.parsing import make_parser, split_line, user_errors

if TYPE_CHECKING:
    from nbchat.client import ChatClient
    from nbchat.notebook.render import DryRunView

__all__ = ["ChatMagics", "SUBCOMMANDS", "split_line", "notebook_text"]

_F = TypeVar("_F", bound=Callable[..., Any])
# IPython's decorators carry no types: these give them one (they return the function).
_ipython_arguments: Any = magic_arguments
_ipython_argument: Any = argument
_ipython_cell_magic: Any = cell_magic
_ipython_line_magic: Any = line_magic
_ipython_magics_class: Any = magics_class


def _arguments(**options: Any) -> Callable[[_F], _F]:
    return cast("Callable[[_F], _F]", _ipython_arguments(**options))


def _argument(*names: str, **options: Any) -> Callable[[_F], _F]:
    return cast("Callable[[_F], _F]", _ipython_argument(*names, **options))


def _cell_magic(name: str) -> Callable[[_F], _F]:
    return cast("Callable[[_F], _F]", _ipython_cell_magic(name))


def _line_magic(name: str) -> Callable[[_F], _F]:
    return cast("Callable[[_F], _F]", _ipython_line_magic(name))


# In the order `%chat` lists them. Those not in COMMANDS are methods of the magic (they
# need its %%chat parser or return a display).
SUBCOMMANDS = (
    "status", "config", "sessions", "new", "use", "history", "files", "store", "stored",
    "unstore", "forget", "fork", "share", "engine", "widget", "recall", "error", "code",
)

LINE_HELP = """\
%chat SUBCOMMAND [ARGS]: everything around the conversation (%%chat sends a prompt).

  status                        backend, model, server health, context window,
                                database, embeddings, current session
  config                        the configuration in effect (change it with
                                %config NbChat.NAME = value)
  sessions [--all]              this notebook's sessions (--all: every notebook's)
  new [TITLE]                   start a new session; the next %%chat continues it
  use SESSION                   continue a session, by id or title
  history [N]                   the last N turns of this session (default 10)
  files                         files attached in this session
  store PATH [--name NAME]      save a file in the file store (attach it by name)
  stored                        list the file store
  unstore NAME                  remove a file from the file store
  forget FILE                   stop re-including a file in this session
  fork [TURN]                   a new session with this one's history up to TURN
  share SESSION ROLE            let a group role read a session (team store only)
  engine start [--model NAME|GGUF] [--embeddings] [--ctx N]
                                start the local llama-server and use it
  engine stop | engine status   stop the local engine / show it
  engine models                 the models known by name (size, licence, cached)
  widget                        the chat panel
  recall QUERY [-n N] [--all]   search past messages; `recall --attach HIT` adds
                                a hit to the next turn
  error [N] [OPTIONS]           explain the kernel's last error (or In[N]'s): its
                                traceback and cell are attached; takes %%chat's
                                options (--dry-run, -m, --cell N, ...)
  code [N] [--all]              the last answer's code block N (default: the last;
                                --all: every block) into a new cell below
"""


class ChatMagics(Magics):
    """``%%chat`` (send a prompt) and ``%chat`` (everything else)."""

    @_arguments(name="%chat")
    @_argument("-m", "--model", help="Model for this cell (default: NbChat.model).")
    @_argument(
        "-b",
        "--backend",
        choices=BACKENDS,  # live: every entry of BACKEND_INFO
        help="Server kind for this cell (default: NbChat.backend).",
    )
    @_argument(
        "-s",
        "--session",
        metavar="NAME",
        help="Continue the session NAME (an id or a title), or start one with that "
        "title; it becomes the current session.",
    )
    @_argument("--new", action="store_true", help="Start a new session with this prompt.")
    @_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        help="Attach a file: a path, or a stored file's name or id. Repeatable.",
    )
    @_argument(
        "--df",
        action="append",
        default=[],
        metavar="NAME",
        help="Attach a pandas or polars DataFrame from the notebook as a summary. Repeatable.",
    )
    @_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME",
        help="Attach any variable by its repr (within the budget). Repeatable.",
    )
    @_argument(
        "--nb",
        action="store_true",
        help="Attach this notebook's cells so far (inputs and text outputs).",
    )
    @_argument(
        "--cell",
        action="append",
        default=[],
        metavar="N",
        help="Attach cell In[N] and its outputs; a range such as 3-5 attaches several. "
        "Repeatable.",
    )
    @_argument(
        "--error",
        nargs="?",
        const=0,
        type=int,
        metavar="N",
        help="Attach the kernel's last error (or In[N]'s): exception, traceback, cell.",
    )
    @_argument("--system", metavar="TEXT", help="System prompt (a new session keeps it).")
    @_argument("--max-tokens", type=int, metavar="N", help="Longest answer, in tokens.")
    @_argument(
        "-t", "--temperature", type=float, metavar="X", help="Sampling temperature, 0 to 2."
    )
    @_argument(
        "--no-history",
        action="store_true",
        help="Send this prompt without the conversation so far.",
    )
    @_argument(
        "--recall", action="store_true", help="Search past messages and add the relevant ones."
    )
    @_argument(
        "--dry-run",
        action="store_true",
        help="Show the exact messages and the token report; send and store nothing.",
    )
    @no_var_expand
    @_cell_magic("chat")
    def chat_cell(self, line: str, cell: str) -> "DryRunView | None":
        """Ask the model: the cell body is the prompt, sent exactly as written.

        The answer streams into the output as Markdown, with a footer line: model,
        prompt tokens (cached), new tokens, speed, cost, notices. ``%chat`` (one
        percent sign) manages sessions, files and the server.
        """
        from nbchat.notebook.cellturn import run_cell_turn

        args = self._cell_parser().parse_args(split_line(line))
        # IPython ends every cell with a newline the user did not type; a small model
        # answers "…France?\n" differently from "…France?" (measured with SmolLM2).
        typed = cell[:-1] if cell.endswith("\n") else cell
        return run_cell_turn(self.shell, args, typed)

    @_line_magic("chat")
    def chat_line(self, line: str) -> Any:
        """Everything around the conversation; ``%chat`` alone lists the subcommands."""
        from nbchat.notebook.state import client_for

        argv = split_line(line)
        if not argv:
            print(LINE_HELP)
            return None
        name, rest = argv[0], argv[1:]
        if name not in SUBCOMMANDS:
            raise UsageError(
                f"Unknown subcommand {name!r} for %chat. Use one of: {', '.join(SUBCOMMANDS)}."
                "\n\n" + LINE_HELP
            )
        client = client_for(self.shell)
        with user_errors(*client.settings.secrets):
            if name in COMMANDS:
                return COMMANDS[name](self.shell, client, rest)
            return getattr(self, f"_{name}")(client, rest)

    chat_line.__doc__ = LINE_HELP

    def _cell_parser(self) -> Any:
        """The ``%%chat`` options' parser (``%chat error`` takes the same options)."""
        return getattr(self.chat_cell, "parser")

    # -- subcommands that need the magic ----------------------------------------------------

    def _widget(self, client: "ChatClient", argv: list[str]) -> Any:
        from nbchat.notebook.parsing import no_arguments

        no_arguments("widget", argv)
        try:
            from nbchat.notebook.widget import ChatWidget
        except ImportError as error:
            raise UsageError(f"The chat widget cannot load: {error}.") from None
        return ChatWidget(client=client)

    def _error(self, client: "ChatClient", argv: list[str]) -> "DryRunView | None":
        from nbchat.core.failure import EXPLAIN_ERROR_QUESTION
        from nbchat.notebook.cellturn import run_cell_turn

        number = int(argv.pop(0)) if argv and argv[0].isdigit() else 0
        args = self._cell_parser().parse_args(argv)
        args.error = number
        return run_cell_turn(self.shell, args, EXPLAIN_ERROR_QUESTION)

    def _code(self, client: "ChatClient", argv: list[str]) -> None:
        from nbchat.notebook.codecell import insert_code

        parser = make_parser("%chat code")
        parser.add_argument("number", nargs="?", type=int)
        parser.add_argument("--all", action="store_true")
        args = parser.parse_args(argv)
        print(insert_code(self.shell, client, args.number, join_all=args.all))

    def _recall(self, client: "ChatClient", argv: list[str]) -> Any:
        try:
            from nbchat.notebook.recall import recall_command
        except ImportError:
            raise UsageError(
                "`%chat recall` is not available yet: the memory module is not installed."
            ) from None
        return recall_command(client, shlex.join(argv))


_ipython_magics_class(ChatMagics)  # registers the decorated methods on the class
