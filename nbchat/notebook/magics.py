"""The ``%%chat`` and ``%chat`` magics: parse the line, call the client, render the output.

``%%chat`` sends the cell body as the prompt, exactly as written. ``%chat`` is
everything around the conversation (sessions, files, status, the local engine).

Errors meant for the user (:class:`~nbchat.core.errors.NbChatError`) become IPython's
``UsageError``: the cell fails and shows the message alone, no traceback. A turn whose
stream breaks after some text keeps and shows the partial answer, marked, and the cell
succeeds; Ctrl-C (a kernel interrupt) does the same. Anything else keeps its traceback.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    argument,
    magic_arguments,
)

from nbchat.core.errors import NbChatError, redact
from nbchat.core.settings import BACKENDS, MAX_TEMPERATURE
from nbchat.notebook.cells import notebook_text

if TYPE_CHECKING:
    import argparse

    from nbchat.api import ChatClient
    from nbchat.core.attachments import AttachmentSpec
    from nbchat.core.errors import AttachmentError
    from nbchat.core.events import Backend
    from nbchat.core.settings import Settings
    from nbchat.core.store import Session, Store
    from nbchat.core.turn import PreparedTurn, TurnResult
    from nbchat.notebook.render import DryRunView

__all__ = ["ChatMagics", "SUBCOMMANDS", "split_line", "notebook_text"]

SUBCOMMANDS = (
    "status",
    "config",
    "sessions",
    "new",
    "use",
    "history",
    "files",
    "store",
    "stored",
    "unstore",
    "forget",
    "fork",
    "share",
    "engine",
    "widget",
    "recall",
    "error",
    "code",
)
DEFAULT_HISTORY_TURNS = 10
NOTEBOOK_LABEL = "notebook"
DATAFRAME_LABEL = "dataframe"
VARIABLE_LABEL = "variable"

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


@contextmanager
def user_errors(*secrets: str | None) -> Iterator[None]:
    """Show nbchat's errors as a message alone (``UsageError``): no traceback."""
    try:
        yield
    except NbChatError as error:
        raise UsageError(redact(str(error), *secrets)) from None


def _secrets(settings: "Settings") -> tuple[str | None, ...]:
    """The keys that must never appear in an output."""
    return (settings.api_key, settings.openai_api_key)


def split_line(line: str) -> list[str]:
    """Split a magic's line like a shell would (quotes group, backslashes kept on Windows)."""
    try:
        if os.name == "nt":
            parts = shlex.split(line, posix=False)
            return [p[1:-1] if len(p) > 1 and p[0] == p[-1] and p[0] in "\"'" else p for p in parts]
        return shlex.split(line)
    except ValueError as error:
        raise UsageError(f"Cannot read the options {line!r}: {error} (check the quotes).") from None


def _parser(prog: str) -> MagicArgumentParser:
    return MagicArgumentParser(prog=prog, add_help=False)


@magics_class
class ChatMagics(Magics):
    """``%%chat`` (send a prompt) and ``%chat`` (everything else)."""

    @magic_arguments(name="%chat")
    @argument("-m", "--model", help="Model for this cell (default: NbChat.model).")
    @argument(
        "-b",
        "--backend",
        choices=BACKENDS,
        help="Server kind for this cell (default: NbChat.backend).",
    )
    @argument(
        "-s",
        "--session",
        metavar="NAME",
        help="Continue the session NAME (an id or a title), or start one with that "
        "title; it becomes the current session.",
    )
    @argument("--new", action="store_true", help="Start a new session with this prompt.")
    @argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        help="Attach a file: a path, or a stored file's name or id. Repeatable.",
    )
    @argument(
        "--df",
        action="append",
        default=[],
        metavar="NAME",
        help="Attach a pandas or polars DataFrame from the notebook as a summary. Repeatable.",
    )
    @argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME",
        help="Attach any variable by its repr (within the budget). Repeatable.",
    )
    @argument(
        "--nb",
        action="store_true",
        help="Attach this notebook's cells so far (inputs and text outputs).",
    )
    @argument(
        "--cell",
        action="append",
        default=[],
        metavar="N",
        help="Attach cell In[N] and its outputs; a range such as 3-5 attaches several. "
        "Repeatable.",
    )
    @argument(
        "--error",
        nargs="?",
        const=0,
        type=int,
        metavar="N",
        help="Attach the kernel's last error (or In[N]'s): exception, traceback, cell.",
    )
    @argument("--system", metavar="TEXT", help="System prompt (a new session keeps it).")
    @argument("--max-tokens", type=int, metavar="N", help="Longest answer, in tokens.")
    @argument(
        "-t", "--temperature", type=float, metavar="X", help="Sampling temperature, 0 to 2."
    )
    @argument(
        "--no-history",
        action="store_true",
        help="Send this prompt without the conversation so far.",
    )
    @argument(
        "--recall", action="store_true", help="Search past messages and add the relevant ones."
    )
    @argument(
        "--dry-run",
        action="store_true",
        help="Show the exact messages and the token report; send and store nothing.",
    )
    @no_var_expand
    @cell_magic("chat")
    def chat_cell(self, line: str, cell: str) -> "DryRunView | None":
        """Ask the model: the cell body is the prompt, sent exactly as written.

        The answer streams into the output as Markdown, with a footer line: model,
        prompt tokens (cached), new tokens, speed, cost, notices. ``%chat`` (one
        percent sign) manages sessions, files and the server.
        """
        args = self.chat_cell.parser.parse_args(split_line(line))
        # IPython ends every cell with a newline the user did not type; a small model
        # answers "…France?\n" differently from "…France?" (measured with SmolLM2).
        typed = cell[:-1] if cell.endswith("\n") else cell
        return run_cell_turn(self.shell, args, typed)

    @line_magic("chat")
    def chat_line(self, line: str) -> Any:
        """Everything around the conversation; ``%chat`` alone lists the subcommands."""
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
        from nbchat.notebook.extension import client_for

        client = client_for(self.shell)
        with user_errors(*_secrets(client.settings)):
            return getattr(self, f"_{name}")(client, rest)

    chat_line.__doc__ = LINE_HELP

    # -- subcommands ---------------------------------------------------------------------

    def _status(self, client: "ChatClient", argv: list[str]) -> None:
        _no_arguments("status", argv)
        settings = client.settings
        server, window, model = _server_state(client, settings)
        rows = [
            ("backend", settings.backend),
            ("model", model or "(the server's default)"),
            ("base URL", _server_url(client, settings)),
            ("server", server),
            ("context window", window),
            ("database", str(settings.resolved_db_path)),
            ("embeddings", _embeddings_state(settings)),
            ("session", _session_line(client)),
            ("notebook", client.notebook or ""),
        ]
        print(_table(rows))

    def _config(self, client: "ChatClient", argv: list[str]) -> None:
        from nbchat.notebook.config import SETTING_TRAITS
        from nbchat.notebook.extension import config_for

        _no_arguments("config", argv)
        config = config_for(self.shell)
        settings = client.settings
        rows = []
        for name in SETTING_TRAITS:
            value: Any = getattr(settings, name)
            if name in ("api_key", "openai_api_key"):
                value = _key_state(settings, name)
            elif name == "db_path":
                value = settings.resolved_db_path
            elif name == "base_url":
                value = settings.resolved_base_url
            elif value is None:
                value = "(not set)"
            text = str(value)
            if len(text) > 70:
                text = text[:69] + "…"
            rows.append((name, f"{text}  [{config.source_of(name)}]"))
        print("NbChat configuration (change with %config NbChat.NAME = value):")
        print(_table(rows, indent="  "))

    def _sessions(self, client: "ChatClient", argv: list[str]) -> None:
        parser = _parser("%chat sessions")
        parser.add_argument("--all", action="store_true")
        args = parser.parse_args(argv)
        store = client.store
        sessions = store.list_sessions(notebook=None if args.all else client.notebook)
        if not sessions:
            print(
                "No sessions yet for this notebook: the next %%chat starts one "
                "(`%chat sessions --all` lists every notebook's)."
            )
            return
        counts = store.message_counts()
        current = client.current_session()
        rows = []
        for session in sessions:
            mark = "*" if current is not None and session.id == current.id else " "
            row = [
                f"{mark} {session.id}",
                _clip(session.title or "(untitled)", 40),
                _turns(counts.get(session.id, 0) // 2),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(session.updated)),
            ]
            if args.all:
                row.append(session.notebook or "")
            rows.append(row)
        print(_grid(rows))
        print("(* = current; `%chat use ID` switches)")

    def _new(self, client: "ChatClient", argv: list[str]) -> None:
        session = client.new_session(" ".join(argv))
        print(f"New session {session.id}{_title(session)}: the next %%chat continues it.")

    def _use(self, client: "ChatClient", argv: list[str]) -> None:
        if not argv:
            raise UsageError("Usage: %chat use SESSION (an id or a title from `%chat sessions`).")
        session = client.use_session(" ".join(argv))
        turns = client.store.message_counts().get(session.id, 0) // 2
        print(f"Using session {session.id}{_title(session)} ({_turns(turns)}).")

    def _history(self, client: "ChatClient", argv: list[str]) -> None:
        parser = _parser("%chat history")
        parser.add_argument("turns", nargs="?", type=int, default=DEFAULT_HISTORY_TURNS)
        args = parser.parse_args(argv)
        if args.turns < 1:
            raise UsageError("Usage: %chat history [N] with N ≥ 1 (the number of turns).")
        session = client.current_session()
        if session is None:
            print("No conversation yet in this notebook: ask something with %%chat.")
            return
        store = client.store
        total = store.message_counts().get(session.id, 0)
        messages = store.messages(session.id, limit=2 * args.turns)
        shown_turns = len({m.seq // 2 for m in messages})
        print(
            f"Session {session.id}{_title(session)}: the last {shown_turns} of "
            f"{_turns((total + 1) // 2)}"
        )
        for message in messages:
            who = "you" if message.role == "user" else message.role
            marks = [m for m in (message.model, _status_mark(message.status)) if m]
            extra = f" ({', '.join(marks)})" if marks else ""
            print(f"\n[turn {message.seq // 2 + 1}] {who}{extra}:")
            print(message.content if message.content else "(nothing received)")
            if message.error_message:
                print(f"  ⚠ {message.error_message}")

    def _files(self, client: "ChatClient", argv: list[str]) -> None:
        _no_arguments("files", argv)
        session = client.current_session()
        records = client.store.attachments(session.id) if session is not None else []
        if session is None or not records:
            print(
                "No files attached in this session yet "
                "(attach with %%chat -f PATH, --df, --var, --nb)."
            )
            return
        rows = [["name", "kind", "turn", "tokens kept / total"]]
        for record in records:
            turn = (record.message_seq or 0) // 2 + 1
            rows.append([
                record.name, record.kind, str(turn),
                f"{record.kept_tokens or 0:,} / {record.total_tokens or 0:,}",
            ])
        print(
            f"Files in session {session.id} "
            "(included on later turns; `%chat forget FILE` stops that):"
        )
        print(_grid(rows))

    def _store(self, client: "ChatClient", argv: list[str]) -> None:
        from pathlib import Path

        from nbchat.core.attachments import store_file
        from nbchat.core.extract import read_path

        parser = _parser("%chat store")
        parser.add_argument("path")
        parser.add_argument("--name")
        args = parser.parse_args(argv)
        settings = client.settings
        data = read_path(os.path.expanduser(args.path), max_file_bytes=settings.max_file_bytes)
        name = args.name or Path(args.path).name
        store = client.store
        replaced = store.get_file(name) is not None
        stored = store_file(
            store, name, data, max_file_bytes=settings.max_file_bytes,
            max_inflated_bytes=settings.max_inflated_bytes,
        )
        verb = "Replaced" if replaced else "Stored"
        print(
            f"{verb} {stored.name} ({_size(stored.size_bytes)}) as stored file {stored.id}: "
            f"attach it with `%%chat -f {stored.name}` or write @{stored.name} in a prompt."
        )

    def _stored(self, client: "ChatClient", argv: list[str]) -> None:
        _no_arguments("stored", argv)
        files = client.store.list_files()
        if not files:
            print("The file store is empty: add a file with `%chat store PATH`.")
            return
        rows = [["id", "name", "size", "stored"]]
        for item in files:
            rows.append([
                str(item.id), item.name, _size(item.size_bytes),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(item.created)),
            ])
        print(_grid(rows))

    def _unstore(self, client: "ChatClient", argv: list[str]) -> None:
        if not argv:
            raise UsageError("Usage: %chat unstore NAME (a name or id from `%chat stored`).")
        key = " ".join(argv)
        removed = client.store.remove_file(key)
        if removed is None:
            raise UsageError(f"No stored file {key!r}: list them with `%chat stored`.")
        print(f"Removed {removed.name} from the file store.")

    def _forget(self, client: "ChatClient", argv: list[str]) -> None:
        from pathlib import Path

        if not argv:
            raise UsageError("Usage: %chat forget FILE (a name from `%chat files`).")
        name = " ".join(argv)
        session = client.current_session()
        if session is None:
            raise UsageError("There is no session yet, so no file to forget.")
        store = client.store
        count = store.forget_attachment(session.id, name)
        if count == 0 and Path(name).name != name:
            name = Path(name).name
            count = store.forget_attachment(session.id, name)
        if count == 0:
            raise UsageError(
                f"{name} is not among this session's files: list them with `%chat files`."
            )
        print(f"{name} will no longer be re-included in session {session.id}.")
        # The conversation is replayed as it was sent: the file stays in the turns that
        # still hold it until they are compacted away.
        holding = sorted({
            (record.message_seq or 0) // 2 + 1
            for record in store.attachments(session.id, include_forgotten=True)
            if record.name == name and (record.message_seq or 0) >= session.history_start_seq
        })
        if holding:
            turns = ("turn " if len(holding) == 1 else "turns ") + ", ".join(map(str, holding))
            print(
                f"It is still in the text of {turns}, which the model keeps seeing as "
                "part of the conversation: forgetting stops it being carried into later "
                "turns once the history is compacted past it. To ask without it, start a new "
                "session (`%chat new`) or use %%chat --no-history."
            )

    def _share(self, client: "ChatClient", argv: list[str]) -> None:
        if len(argv) != 2:
            raise UsageError("Usage: %chat share SESSION ROLE (a session id or title, a group role).")
        store = client.store
        share = getattr(store, "share_session", None)
        if share is None:
            raise UsageError(
                f"Sharing needs the team store: the database {store.location} is a SQLite "
                "file; point NBCHAT_DB at a postgresql:// URL (see docs/team.md)."
            )
        session = store.get_session(argv[0])
        if session is None:
            raise UsageError(f"No session {argv[0]!r}: list them with `%chat sessions --all`.")
        share(session.id, argv[1])
        print(
            f"Session {session.id} ({session.title or 'untitled'}) is now readable by the "
            f"members of {argv[1]}: they open it with `%chat use {session.id}`; it stays "
            "read-only for them."
        )

    def _fork(self, client: "ChatClient", argv: list[str]) -> None:
        parser = _parser("%chat fork")
        parser.add_argument("turn", nargs="?", type=int)
        args = parser.parse_args(argv)
        if args.turn is not None and args.turn < 1:
            raise UsageError("Usage: %chat fork [TURN] with TURN ≥ 1.")
        source = client.current_session()
        session = client.fork(args.turn)
        turns = client.store.message_counts().get(session.id, 0) // 2
        origin = f" of {source.id}" if source is not None else ""
        upto = f" up to turn {args.turn}" if args.turn is not None else ""
        print(
            f"New session {session.id}{_title(session)} with {_turns(turns)}{origin}{upto}; "
            "the next %%chat continues it."
        )

    def _engine(self, client: "ChatClient", argv: list[str]) -> None:
        action = argv[0] if argv else "status"
        if action == "start":
            self._engine_start(argv[1:])
        elif action == "stop":
            _no_arguments("engine stop", argv[1:])
            self._engine_stop()
        elif action == "status":
            _no_arguments("engine status", argv[1:])
            _engine_status()
        elif action == "models":
            from nbchat.engine.model import format_models

            _no_arguments("engine models", argv[1:])
            print(format_models())
        else:
            raise UsageError(
                "Usage: %chat engine start [--model NAME|GGUF] [--embeddings] [--ctx N] "
                "| stop | status | models"
            )

    def _engine_start(self, argv: list[str]) -> None:
        from nbchat.engine import start_engine
        from nbchat.notebook.extension import config_for

        parser = _parser("%chat engine start")
        parser.add_argument("--model", metavar="NAME|GGUF")
        parser.add_argument("--embeddings", action="store_true")
        parser.add_argument("--ctx", type=int, metavar="N")
        args = parser.parse_args(argv)
        config = config_for(self.shell)
        extra: dict[str, Any] = {}
        ctx = args.ctx or config.context_window
        if ctx:
            extra["ctx_tokens"] = ctx
        print(
            "Starting the local engine (the first start prepares the model; "
            "this can take a while)…",
            flush=True,
        )
        handle = start_engine(args.model, quiet=False, **extra)
        config.backend = "llama"
        config.base_url = handle.url
        print(f"Chat engine ready at {handle.url}: %%chat now uses it (NbChat.base_url).")
        if args.embeddings:
            embedder = start_engine(args.model, embeddings=True, quiet=False)
            config.embedding_url = embedder.url
            print(f"Embeddings engine ready at {embedder.url} (NbChat.embedding_url).")

    def _engine_stop(self) -> None:
        from nbchat.engine import engine_url, stop_engine
        from nbchat.notebook.extension import config_for

        config = config_for(self.shell)
        url = engine_url("chat")
        if stop_engine("chat"):
            print(f"Stopped the chat engine at {url}.")
            if url and config.base_url == url:
                config.base_url = None
        else:
            print("No local chat engine is running.")
        # The embeddings engine is stopped too when it is the one nbchat uses.
        embeddings = engine_url("embeddings")
        if embeddings and config.embedding_url == embeddings and stop_engine("embeddings"):
            print(f"Stopped the embeddings engine at {embeddings}.")
            config.embedding_url = None

    def _widget(self, client: "ChatClient", argv: list[str]) -> Any:
        _no_arguments("widget", argv)
        try:
            from nbchat.notebook.widget import ChatWidget
        except ImportError as error:
            raise UsageError(f"The chat widget cannot load: {error}.") from None
        return ChatWidget(client=client)

    def _error(self, client: "ChatClient", argv: list[str]) -> "DryRunView | None":
        from nbchat.core.failure import EXPLAIN_ERROR_QUESTION

        number = int(argv.pop(0)) if argv and argv[0].isdigit() else 0
        args = self.chat_cell.parser.parse_args(argv)
        args.error = number
        return run_cell_turn(self.shell, args, EXPLAIN_ERROR_QUESTION)

    def _code(self, client: "ChatClient", argv: list[str]) -> None:
        from nbchat.notebook.codecell import insert_code

        parser = _parser("%chat code")
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


# -- %%chat ------------------------------------------------------------------------------


def run_cell_turn(shell: Any, args: "argparse.Namespace", prompt: str) -> "DryRunView | None":
    """One ``%%chat`` cell: gather attachments, prepare, then show a dry run or stream."""
    from nbchat.notebook.extension import client_for

    client = client_for(shell)
    settings = _cell_settings(client.settings, args)
    with user_errors(*_secrets(settings)):
        specs, failures = _variable_specs(shell, args, settings, client.notebook, prompt)
        if args.error is not None:
            from nbchat.notebook.cells import NO_ERROR_YET, failure_spec, find_failure

            failure = find_failure(shell, args.error or None)
            if failure is None:
                print(NO_ERROR_YET)
                return None
            specs.append(failure_spec(failure, _secrets(settings)))
        if failures:
            raise_attachment_failures(client, settings, args.file, failures)
        prepared = client.prepare(
            prompt,
            [*args.file, *specs],
            session=args.session,
            new=args.new,
            no_history=args.no_history,
            settings=settings,
            recall=args.recall,
            count_prompt=args.dry_run,
        )
        attached_now = {spec.name for spec in specs if spec.label == DATAFRAME_LABEL}
        notices = _changed_dataframe_notices(
            shell, client.store, None if args.no_history else prepared.session, attached_now
        )
        if args.dry_run:
            from nbchat.notebook.render import DryRunView

            prepared.resolver.remember()
            return DryRunView(prepared, notices)
        _send(shell, client, prepared.with_notices(notices), settings)
    return None


def _cell_settings(base: "Settings", args: "argparse.Namespace") -> "Settings":
    import dataclasses

    settings = base
    if args.backend and args.backend != base.backend and not args.model:
        # The configured model belongs to the other server.
        settings = dataclasses.replace(settings, model=None)
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.temperature is not None and not 0 <= args.temperature <= MAX_TEMPERATURE:
        raise UsageError(
            f"-t/--temperature must be between 0 and {MAX_TEMPERATURE:g} "
            f"(got {args.temperature:g})."
        )
    return settings.replace(
        backend=args.backend,
        model=args.model,
        system_prompt=args.system,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )


def _variable_specs(
    shell: Any, args: "argparse.Namespace", settings: "Settings", notebook: str | None, prompt: str
) -> tuple[list["AttachmentSpec"], list["AttachmentError"]]:
    """Specs for ``--df``, ``--var`` and ``--nb``; every missing name is a failure."""
    from nbchat.core.attachments import text_spec
    from nbchat.core.dataframe import (
        fingerprint,
        is_dataframe,
        summarize_dataframe,
        summarize_variable,
    )
    from nbchat.core.errors import AttachmentError

    specs: list[AttachmentSpec] = []
    failures: list[AttachmentError] = []
    namespace = shell.user_ns
    for name in args.df:
        if name not in namespace:
            failures.append(_undefined(name))
        elif not is_dataframe(namespace[name]):
            kind = type(namespace[name]).__name__
            failures.append(
                AttachmentError(
                    name,
                    f"is a {kind}, not a pandas or polars DataFrame.",
                    f"Attach it with --var {name}.",
                )
            )
        else:
            frame = namespace[name]
            specs.append(
                text_spec(
                    name,
                    summarize_dataframe(frame, name),
                    label=DATAFRAME_LABEL,
                    fingerprint=fingerprint(frame),
                )
            )
    for name in args.var:
        if name not in namespace:
            failures.append(_undefined(name))
        else:
            max_chars = max(1_000, settings.attachment_budget * 4)  # ~4 characters a token
            text = summarize_variable(namespace[name], name, max_chars=max_chars)
            specs.append(text_spec(name, redact(text, *_secrets(settings)), label=VARIABLE_LABEL))
    if args.cell:
        from nbchat.notebook.cells import cell_specs

        found, missing = cell_specs(shell, args.cell, _secrets(settings))
        specs += found
        failures += missing
    if args.nb:
        name = NOTEBOOK_LABEL
        if notebook and notebook.endswith(".ipynb"):
            name = os.path.basename(notebook)
        text = notebook_text(shell, running_prompt=prompt, secrets=_secrets(settings))
        specs.append(text_spec(name, text, label=NOTEBOOK_LABEL))
    return specs, failures


def _undefined(name: str) -> "AttachmentError":
    from nbchat.core.errors import AttachmentError

    return AttachmentError(
        name,
        "is not defined in this notebook.",
        "Run the cell that creates it first, or check the spelling.",
    )


def raise_attachment_failures(
    client: "ChatClient",
    settings: "Settings",
    files: Sequence[str],
    failures: list["AttachmentError"],
) -> None:
    """Raise one error listing the failing variables and the failing files together."""
    from nbchat.core.attachments import Resolver, as_specs
    from nbchat.core.errors import AttachmentError, AttachmentsError

    everything = list(failures)
    try:
        Resolver(client.store, settings.max_file_bytes, settings.max_inflated_bytes).resolve_all(
            as_specs(files, client.store)
        )
    except AttachmentsError as many:
        everything += many.failures
    except AttachmentError as one:
        everything.append(one)
    raise AttachmentsError(everything)


def _changed_dataframe_notices(
    shell: Any, store: "Store", session: "Session | None", attached_now: set[str]
) -> list[str]:
    """A notice for each DataFrame attached earlier whose live object has changed since."""
    from nbchat.core.dataframe import fingerprint, is_dataframe

    if session is None:
        return []
    latest = {}
    for record in store.attachments(session.id):
        if record.kind == DATAFRAME_LABEL and record.fingerprint:
            latest[record.name] = record
    notices = []
    for name, record in latest.items():
        live = shell.user_ns.get(name)
        if name in attached_now or live is None or not is_dataframe(live):
            continue
        try:
            changed = fingerprint(live) != record.fingerprint
        except Exception:  # noqa: BLE001 - an odd frame must not stop the turn
            continue
        if changed:
            turn = (record.message_seq or 0) // 2 + 1
            notices.append(
                f"DataFrame {name} has changed since it was attached on turn {turn}; the "
                f"model still sees the earlier summary. Re-attach it with --df {name}."
            )
    return notices


def _send(shell: Any, client: "ChatClient", prepared: "PreparedTurn", settings: "Settings") -> None:
    """Stream the turn into the cell's output; keep and show a partial answer on Ctrl-C."""
    from nbchat.core.events import PromptProgress, TextDelta
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.extension import remember_result
    from nbchat.notebook.footer import footer_text
    from nbchat.notebook.render import AnswerView

    backend = client.backend(settings)
    check_ready = getattr(backend, "check_ready", None)
    if check_ready is not None:
        check_ready()  # a dead server fails the cell before anything is shown or stored
    model = _model_label(backend, settings)
    view = AnswerView(shell, settings.stream_update_interval)
    started_s = time.time()
    view.start()
    events = client.run(prepared)
    result: TurnResult | None = None
    interrupted = False
    try:
        for event in events:
            if isinstance(event, TextDelta):
                view.add(event.text)
            elif isinstance(event, PromptProgress) and event.worth_showing:
                view.progress(event.describe())
            elif isinstance(event, TurnResult):
                result = event
    except KeyboardInterrupt:
        interrupted = True
        events.close()  # when the interrupt hit this loop, closing stores the partial answer
        result = _interrupted_result(client, prepared, started_s)
    except BaseException:
        events.close()
        view.discard()
        raise
    if result is None:
        view.discard()
        view.footer("", "Interrupted before the question was sent; nothing was stored.")
        return
    remember_result(shell, result)
    if result.status == "error" and not interrupted:
        view.discard()
        message = result.error_message or "The server sent no answer."
        raise UsageError(redact(message, *_secrets(settings)))
    view.finish()
    problem = None
    if interrupted and not result.text:
        problem = "Interrupted before the first word arrived; the question is kept in the session."
    elif result.status == "partial" and result.error_kind != "interrupted":
        problem = redact(result.error_message or "The answer stopped early.", *_secrets(settings))
    view.footer(footer_text(result, model), problem)


def _interrupted_result(
    client: "ChatClient", prepared: "PreparedTurn", started_s: float
) -> "TurnResult | None":
    """The partial answer the client kept when the stream was interrupted, if any."""
    from dataclasses import replace

    result = client.last_result
    if result is None:
        return None  # interrupted before the question was stored
    return replace(result, error_kind=result.error_kind or "interrupted")


def _server_url(client: "ChatClient", settings: "Settings") -> str:
    """The URL the backend really uses (a running local engine when none is set)."""
    try:
        return str(getattr(client.backend(settings), "base_url", settings.resolved_base_url))
    except NbChatError:
        return settings.resolved_base_url


def _model_label(backend: "Backend", settings: "Settings") -> str | None:
    """The model's name for the footer: the one the request names, else (a llama-server
    picking its own) what the server says it runs."""
    if settings.resolved_model:
        return settings.resolved_model
    props = getattr(backend, "props", None)
    if callable(props):
        try:
            found = props()
        except Exception:  # noqa: BLE001 - a footer without a model name is fine
            found = None
        if found:
            name = str(found.get("model_alias") or found.get("model_path") or "")
            name = os.path.basename(name)
            return name[: -len(".gguf")] if name.endswith(".gguf") else (name or None)
    return None


# -- small helpers -----------------------------------------------------------------------


def _no_arguments(name: str, argv: list[str]) -> None:
    if argv:
        raise UsageError(f"%chat {name} takes no arguments (got {' '.join(argv)!r}).")


def _server_state(client: "ChatClient", settings: "Settings") -> tuple[str, str, str | None]:
    """(health, context window, model label) of the configured server."""
    from nbchat.api import DEFAULT_WINDOW_TOKENS
    from nbchat.core.errors import BackendError

    try:
        backend = client.backend(settings)
    except NbChatError as error:
        return f"not usable: {error}", "unknown", settings.resolved_model
    check_ready = getattr(backend, "check_ready", None)
    try:
        if check_ready is not None:
            check_ready()
            health = "ok"
        else:
            health = _probe(f"{settings.resolved_base_url}/models")
    except BackendError as error:
        health = {
            "loading": "loading the model",
            "unreachable": "not running",
            "timeout": "not answering",
        }.get(error.kind, "error")
        health += f" ({error})"
    if settings.context_window:
        window = f"{settings.context_window:,} tokens (NbChat.context_window)"
    else:
        try:
            found = backend.context_window(settings.resolved_model)
        except Exception:  # noqa: BLE001 - unknown is an answer too
            found = None
        window = (
            f"{found:,} tokens (from the server)" if found
            else f"unknown ({DEFAULT_WINDOW_TOKENS:,} assumed)"
        )
    label = _model_label(backend, settings) if health == "ok" else settings.resolved_model
    return health, window, label


def _probe(url: str, timeout_s: float = 3.0) -> str:
    """``ok`` when ``url`` answers 2xx, else what happened (no credentials are sent)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener()
    if url.startswith(("http://127.0.0.1", "http://localhost")):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return "ok" if 200 <= response.status < 300 else f"answers HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"reachable (HTTP {error.code} without credentials)"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"not reachable ({reason})"


def _embeddings_state(settings: "Settings") -> str:
    url = settings.embedding_url
    if not url:
        return "off (set NbChat.embedding_url, or `%chat engine start --embeddings`)"
    health = _probe(url.rstrip("/") + "/health", timeout_s=2.0)
    if health == "ok":
        return f"on ({url})"
    return f"off: {url} {health}"


def _session_line(client: "ChatClient") -> str:
    session = client.current_session()
    if session is None:
        return "none yet (the next %%chat starts one)"
    turns = client.store.message_counts().get(session.id, 0) // 2
    return f"{session.id}{_title(session)} ({_turns(turns)})"


def _key_state(settings: "Settings", name: str) -> str:
    """A key's state, never its value (its source is shown next to it)."""
    return "set (hidden)" if getattr(settings, name) else "not set"


def _turns(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"


def _title(session: "Session") -> str:
    return f" “{session.title}”" if session.title else ""


def _status_mark(status: str) -> str:
    return {"partial": "partial", "error": "failed"}.get(status, "")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size_bytes} bytes"


def _table(rows: Sequence[tuple[str, str]], indent: str = "") -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{indent}{label:<{width}}  {value}" for label, value in rows)


def _grid(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def _engine_status() -> None:
    from nbchat.engine import engine_status

    for kind in ("chat", "embeddings"):
        status = engine_status(kind)
        if not status.get("running"):
            print(f"{kind:<10}  not running")
            continue
        health = "healthy" if status.get("healthy") else "not healthy yet"
        model = os.path.basename(str(status.get("model", "")))
        print(f"{kind:<10}  {health} at {status.get('url')} (pid {status.get('pid')}, {model})")
