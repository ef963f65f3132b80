"""``%chat files | store | stored | unstore | forget``: attached and stored files."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from nbchat.notebook.parsing import make_parser, no_arguments
from nbchat.notebook.text import grid, size_text

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["files", "store", "stored", "unstore", "forget"]


def files(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    no_arguments("files", argv)
    session = client.current_session()
    records = client.store.attachments(session.id) if session is not None else []
    if session is None or not records:
        print(
            "No files attached in this session yet "
            "(attach with %%chat -f PATH, --df, --var, --nb)."
        )
        return
    from nbchat.core.passages import seen_parts

    seen = seen_parts(client.store, session.id, records, client.chunk_words)
    rows = [["name", "kind", "turn", "tokens kept / total", "seen by the conversation"]]
    for record in records:
        turn = (record.message_seq or 0) // 2 + 1
        partial = (record.kept_tokens or 0) < (record.total_tokens or 0)
        rows.append([
            record.name, record.kind, str(turn),
            f"{record.kept_tokens or 0:,} / {record.total_tokens or 0:,}",
            seen.get(record.sha256, "part" if partial else "whole"),
        ])
    print(
        f"Files in session {session.id} "
        "(included on later turns; `%chat forget FILE` stops that):"
    )
    print(grid(rows))


def store(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    from nbchat.core.extract import read_path

    parser = make_parser("%chat store")
    parser.add_argument("path")
    parser.add_argument("--name")
    args = parser.parse_args(argv)
    settings = client.settings
    data = read_path(os.path.expanduser(args.path), max_file_bytes=settings.max_file_bytes)
    name = args.name or Path(args.path).name
    stored_file, replaced = client.store_file(name, data)
    verb = "Replaced" if replaced else "Stored"
    print(
        f"{verb} {stored_file.name} ({size_text(stored_file.size_bytes)}) as stored file "
        f"{stored_file.id}: attach it with `%%chat -f {stored_file.name}` or write "
        f"@{stored_file.name} in a prompt."
    )


def stored(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    no_arguments("stored", argv)
    listed = client.store.list_files()
    if not listed:
        print("The file store is empty: add a file with `%chat store PATH`.")
        return
    rows = [["id", "name", "size", "stored"]]
    for item in listed:
        rows.append([
            str(item.id), item.name, size_text(item.size_bytes),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(item.created)),
        ])
    print(grid(rows))


def unstore(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    if not argv:
        raise UsageError("Usage: %chat unstore NAME (a name or id from `%chat stored`).")
    key = " ".join(argv)
    removed = client.store.remove_file(key)
    if removed is None:
        raise UsageError(f"No stored file {key!r}: list them with `%chat stored`.")
    print(f"Removed {removed.name} from the file store.")


def forget(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    if not argv:
        raise UsageError("Usage: %chat forget FILE (a name from `%chat files`).")
    name = " ".join(argv)
    session = client.current_session()
    if session is None:
        raise UsageError("There is no session yet, so no file to forget.")
    db = client.store
    count = db.forget_attachment(session.id, name)
    if count == 0 and Path(name).name != name:
        name = Path(name).name
        count = db.forget_attachment(session.id, name)
    if count == 0:
        raise UsageError(
            f"{name} is not among this session's files: list them with `%chat files`."
        )
    print(f"{name} will no longer be re-included in session {session.id}.")
    # The conversation is replayed as it was sent: the file stays in the turns that
    # still hold it until they are compacted away.
    holding = sorted({
        (record.message_seq or 0) // 2 + 1
        for record in db.attachments(session.id, include_forgotten=True)
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
