"""``%chat recall``: search past conversations, and attach a hit to the next turn.

    %chat recall QUERY [-n N] [--all] [--here]   ranked hits: session, time, role, score
    %chat recall --attach 2 [3 ...]              add hits of the last listing to next turn
    %chat recall --attach-id 123                 add a message by its id
    %chat recall --clear                         attach nothing after all

By default the sessions of this notebook are searched (every session when the client has
no notebook); ``--all`` searches every session in the database, ``--here`` only the
current one. Time words in the query ("yesterday", "last week") become a time filter.
Attached messages go into the next turn's "relevant earlier conversation" block and are
then cleared.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbchat.core.errors import ConfigError

if TYPE_CHECKING:
    from nbchat.client import ChatClient
    from nbchat.core.store import Hit

__all__ = ["recall_command", "attach_message", "RecallView", "USAGE"]

USAGE = (
    "%chat recall QUERY [-n N] [--all | --here] | --attach HIT_NO [HIT_NO ...] | "
    "--attach-id MESSAGE_ID | --clear"
)
DEFAULT_HITS = 10
SNIPPET_CHARS = 160


@dataclass(frozen=True)
class RecallView:
    """What ``%chat recall`` shows: plain text, Markdown, and the hits themselves."""

    text: str
    markdown: str
    hits: tuple["Hit", ...] = field(default=())

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)

    def __str__(self) -> str:
        return self.text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"%chat recall: {message}. Usage: {USAGE}")


def _parser() -> _Parser:
    parser = _Parser(prog="%chat recall", add_help=False)
    parser.add_argument("query", nargs="*")
    parser.add_argument("-n", type=int, default=DEFAULT_HITS, dest="limit")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", dest="everywhere")
    scope.add_argument("--here", action="store_true")
    parser.add_argument("--attach", type=int, nargs="+", default=None)
    parser.add_argument("--attach-id", type=int, nargs="+", default=None, dest="attach_id")
    parser.add_argument("--clear", action="store_true")
    return parser


def recall_command(client: "ChatClient", argv: str) -> RecallView:
    """Run ``%chat recall ARGV`` for ``client`` and return what to display.

    Raises :class:`~nbchat.core.errors.ConfigError` for a bad command line.
    """

    args = _parser().parse_args(shlex.split(argv))
    memory = client.memory
    if args.clear:
        count = len(memory.attached_ids)
        memory.attached_ids.clear()
        return _note(f"Cleared {count} attached message(s): the next turn gets none.")
    if args.attach is not None or args.attach_id is not None:
        ids: list[int] = []
        for number in args.attach or []:
            listing = memory.last_listing
            if not 1 <= number <= len(listing):
                raise ConfigError(
                    f"There is no hit {number} in the last `%chat recall` listing"
                    + (f" (it has {len(listing)})." if listing else " (search first).")
                )
            ids.append(listing[number - 1])
        ids += args.attach_id or []
        return _attach(client, ids)
    query = " ".join(args.query).strip()
    if not query:
        raise ConfigError(f"%chat recall needs something to search for. Usage: {USAGE}")
    if args.limit < 1:
        raise ConfigError("%chat recall: -n must be at least 1.")
    return _search(client, query, args.limit, args.everywhere, args.here)


def attach_message(client: "ChatClient", message_id: int) -> RecallView:
    """Add the stored message ``message_id`` to the next turn (``--attach-id`` for one id)."""
    return _attach(client, [message_id])


def _attach(client: "ChatClient", ids: list[int]) -> RecallView:

    memory = client.memory
    hits = memory.hits(ids)
    missing = sorted(set(ids) - {hit.message_id for hit in hits})
    if missing:
        raise ConfigError(
            f"No stored message with id {', '.join(map(str, missing))}: "
            "search with `%chat recall QUERY` to see the ids."
        )
    for hit in hits:
        if hit.message_id not in memory.attached_ids:
            memory.attached_ids.append(hit.message_id)
    lines = [
        f'- {hit.role} in "{_title(hit)}", {_when(hit.created)}: {hit.snippet(width_chars=80)}'
        for hit in hits
    ]
    head = f"{len(hits)} message(s) will be added to the next turn:"
    return RecallView("\n".join([head, *lines]), "\n".join([head, "", *lines]), tuple(hits))


def _search(
    client: "ChatClient", query: str, limit: int, everywhere: bool, here: bool
) -> RecallView:
    from nbchat.memory.planner import find_time_range
    from nbchat.core.ranking import RRF_K, query_terms
    from nbchat.core.store import SearchFilter

    memory = client.memory
    time_range = find_time_range(query)
    if time_range is not None:
        query = " ".join(query.lower().replace(time_range.label, " ").split())
    session = client.current_session() if here else None
    if here and session is None:
        raise ConfigError("There is no current session to search: chat first, or drop --here.")
    search_filter = SearchFilter(
        session_id=session.id if session is not None else None,
        notebook=client.notebook if not (everywhere or here) else None,
        since=time_range.since if time_range else None,
        until=time_range.until if time_range else None,
    )
    if query:
        hits = memory.search(query, limit=limit, search_filter=search_filter)
    else:
        hits = memory.browse(search_filter, limit=limit)
    memory.last_listing = [hit.message_id for hit in hits]

    scope = "this session" if here else ("every session" if everywhere or not client.notebook
                                         else "this notebook's sessions")
    when = f", {time_range.label}" if time_range else ""
    if not query:
        how = "most important first"
    else:
        how = "words and meaning" if memory.last_search_used_vectors else "words only"
    head = f"{len(hits)} hit(s) for {query or 'everything'!r} in {scope}{when} ({how})"
    if not hits:
        head = f"No match for {query or 'anything'!r} in {scope}{when} ({how})"
        tip = "Try other words, --all to search every session, or a wider time."
        return RecallView(f"{head}.\n{tip}", f"**{_md(head)}.** {tip}")

    terms = query_terms(query)
    lists = 2 if memory.last_search_used_vectors and query else 1
    best = lists / (RRF_K + 1)  # first in every ranking used: shown as 1.00
    rows: list[tuple[str, ...]] = []
    for number, hit in enumerate(hits, start=1):
        rows.append(
            (
                str(number),
                _title(hit),
                _when(hit.created),
                hit.role,
                f"{min(1.0, hit.score / best):.2f}",
                str(hit.message_id),
                hit.snippet(terms, SNIPPET_CHARS),
            )
        )
    tip = (
        "Attach one to the next turn with `%chat recall --attach N` "
        "(or by id with `--attach-id ID`)."
    )
    header = ("#", "session", "time", "role", "score", "id", "snippet")
    text_lines = [head + ":"]
    for row in rows:
        text_lines.append(
            f"{row[0]:>2}. [{row[4]}] {row[1]} · {row[2]} · {row[3]} (id {row[5]}): {row[6]}"
        )
    text_lines.append(tip)
    md_lines = [
        f"**{_md(head)}**",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows),
        "",
        tip,
    ]
    return RecallView("\n".join(text_lines), "\n".join(md_lines), tuple(hits))


def _note(text: str) -> RecallView:
    return RecallView(text, text)


def _title(hit: "Hit") -> str:
    return hit.session_title or hit.session_id


def _when(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    out = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for mark in ("*", "_", "`", "<", ">", "[", "]", "#"):
        out = out.replace(mark, "\\" + mark)
    return out
