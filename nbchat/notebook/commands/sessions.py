"""``%chat sessions | new | use | history | fork | share``: the conversations of this notebook."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from nbchat.notebook.parsing import make_parser
from nbchat.notebook.text import clip, grid, status_mark, title_text, turns_text

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["sessions", "new", "use", "history", "fork", "share", "DEFAULT_HISTORY_TURNS"]

DEFAULT_HISTORY_TURNS = 10


def sessions(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    parser = make_parser("%chat sessions")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    store = client.store
    found = store.list_sessions(notebook=None if args.all else client.notebook)
    if not found:
        print(
            "No sessions yet for this notebook: the next %%chat starts one "
            "(`%chat sessions --all` lists every notebook's)."
        )
        return
    counts = store.message_counts()
    current = client.current_session()
    rows = []
    for session in found:
        mark = "*" if current is not None and session.id == current.id else " "
        row = [
            f"{mark} {session.id}",
            clip(session.title or "(untitled)", 40),
            turns_text(counts.get(session.id, 0) // 2),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(session.updated)),
        ]
        if args.all:
            row.append(session.notebook or "")
        rows.append(row)
    print(grid(rows))
    print("(* = current; `%chat use ID` switches)")


def new(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    session = client.new_session(" ".join(argv))
    print(f"New session {session.id}{title_text(session)}: the next %%chat continues it.")


def use(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    if not argv:
        raise UsageError("Usage: %chat use SESSION (an id or a title from `%chat sessions`).")
    session = client.use_session(" ".join(argv))
    turns = client.store.message_counts().get(session.id, 0) // 2
    print(f"Using session {session.id}{title_text(session)} ({turns_text(turns)}).")


def history(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    parser = make_parser("%chat history")
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
        f"Session {session.id}{title_text(session)}: the last {shown_turns} of "
        f"{turns_text((total + 1) // 2)}"
    )
    for message in messages:
        who = "you" if message.role == "user" else message.role
        marks = [m for m in (message.model, status_mark(message.status)) if m]
        extra = f" ({', '.join(marks)})" if marks else ""
        print(f"\n[turn {message.seq // 2 + 1}] {who}{extra}:")
        print(message.content if message.content else "(nothing received)")
        if message.error_message:
            print(f"  ⚠ {message.error_message}")


def fork(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    parser = make_parser("%chat fork")
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
        f"New session {session.id}{title_text(session)} with {turns_text(turns)}{origin}"
        f"{upto}; the next %%chat continues it."
    )


def share(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    """Let a group role read a session, read-only (the team store's ``share_session``)."""
    if len(argv) != 2:
        raise UsageError("Usage: %chat share SESSION ROLE (a session id or title, a group role).")
    store = client.store
    share_session = getattr(store, "share_session", None)
    if share_session is None:
        raise UsageError(
            f"Sharing needs the team store: the database {store.location} is a SQLite "
            "file; point NBCHAT_DB at a postgresql:// URL (see docs/team.md)."
        )
    session = store.get_session(argv[0])
    if session is None:
        raise UsageError(f"No session {argv[0]!r}: list them with `%chat sessions --all`.")
    share_session(session.id, argv[1])
    print(
        f"Session {session.id}{title_text(session)} is now readable by the members of "
        f"{argv[1]}: they open it with `%chat use {session.id}`; it stays read-only for them."
    )
