"""History that no longer fits: which turns to drop, and the files carried past them.

A compaction drops the oldest turns in one step (:func:`~nbchat.core.layout.plan_compaction`
keeps the newest turns within ``keep_tokens``, a quarter of the room by default), so the
prompt's prefix stays stable for several turns after it; it always drops at least one
turn. The files those turns attached are re-included in one "files shared earlier"
block, within ``files_budget_tokens``; a file too large for its share there is carried as
its head and the passages the current question needs (``select``). The turn stores the
result (:class:`~nbchat.core.records.Compaction`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbchat.core.attachments import STORED, AttachmentSpec, Resolved, Resolver
from nbchat.core.budget import fit_budget, truncate_to_tokens
from nbchat.core.errors import NbChatError
from nbchat.core.layout import (
    HistoryTurn,
    history_turns,
    plan_compaction,
    render_block,
    render_carried_files,
)
from nbchat.core.records import Compaction, PartTokens
from nbchat.core.store import AttachmentRecord, Session, StoredMessage
from nbchat.core.tokens import CachedCounter

__all__ = [
    "JOIN_SLACK_TOKENS",
    "FittedHistory",
    "fit_history",
    "in_context_shas",
    "earlier_parts",
    "carry_files",
    "resolve_record",
    "Select",
]

#: Passages of a file too large for its grant: (file, grant, its tokens, the first kept
#: message's seq) -> (the text to carry, its tokens), or None to cut it instead.
Select = Callable[[Resolved, int, int, int], "tuple[str, int] | None"]

# Tokens allowed for the separators around each block: a join can merge or split a
# token at a boundary, which the per-part counts do not see.
JOIN_SLACK_TOKENS = 4


@dataclass(frozen=True)
class FittedHistory:
    """The history a turn replays: its turns, the carried files, and the compaction made
    to fit them (None when all fit); ``dropped`` counts the turns left out now."""

    turns: tuple[HistoryTurn, ...]
    carried_files: str
    compaction: Compaction | None
    dropped: int
    notices: tuple[str, ...]


def fit_history(
    stored: Sequence[StoredMessage],
    session: Session,
    records: Sequence[AttachmentRecord],
    resolver: Resolver,
    counter: CachedCounter,
    *,
    limit_tokens: int,
    window_tokens: int,
    files_budget_tokens: int,
    keep_tokens: int | None = None,
    select: Select | None = None,
) -> FittedHistory:
    """The session's replayed history within ``limit_tokens``, compacting when it is over.

    A compaction keeps the newest turns within ``keep_tokens`` (half the window when not
    given) and drops at least one: one that dropped nothing would only change the
    prefix, costing the server's cache for no room.
    """
    turns = history_turns(stored)
    carried = session.carried_files
    history_tokens = sum(t.tokens for t in turns) + counter.count(carried)
    if history_tokens <= limit_tokens:
        return FittedHistory(tuple(turns), carried, None, 0, ())
    notices: list[str] = []
    keep = min(window_tokens // 2 if keep_tokens is None else keep_tokens, limit_tokens)
    dropped = plan_compaction([t.tokens for t in turns], keep)
    if turns and dropped == 0:
        dropped = 1
    kept_turns = turns[dropped:]
    start_seq = kept_turns[0].user.seq if kept_turns else (stored[-1].seq + 1 if stored else 0)
    room = limit_tokens - sum(t.tokens for t in kept_turns)
    carried = carry_files(
        records, resolver, start_seq, min(files_budget_tokens, room), counter, notices, select
    )
    if dropped:
        notices.append(
            f"History compacted: {dropped} oldest turn(s) dropped to fit the "
            f"context window ({window_tokens:,} tokens); their files are re-included "
            "and past messages stay searchable with `%chat recall`."
        )
    else:
        notices.append(
            "History compacted: the files carried from earlier turns were cut to fit the "
            f"context window ({window_tokens:,} tokens)."
        )
    return FittedHistory(
        tuple(kept_turns), carried, Compaction(start_seq, carried), dropped, tuple(notices)
    )


def in_context_shas(records: Sequence[AttachmentRecord], session: Session) -> set[str]:
    """Content already in this session's prompt: kept turns' files and carried files."""
    return {
        record.sha256
        for record in records
        if record.kept_tokens
        and record.kept_tokens >= (record.total_tokens or 0)
        and (record.message_seq or 0) >= session.history_start_seq
    }


def earlier_parts(records: Sequence[AttachmentRecord]) -> list[PartTokens]:
    """Files attached on earlier turns of this session, for the report."""
    return [
        PartTokens(
            record.name, record.kind, record.kept_tokens or 0, record.total_tokens or 0,
            f"turn {(record.message_seq or 0) // 2 + 1}",
        )
        for record in records
        if not record.forgotten
    ]


def carry_files(
    records: Sequence[AttachmentRecord],
    resolver: Resolver,
    start_seq: int,
    budget_tokens: int,
    counter: CachedCounter,
    notices: list[str],
    select: Select | None = None,
) -> str:
    """The "files shared earlier" block for the turns a compaction drops."""
    dropped = [
        r for r in records
        if not r.forgotten and r.message_seq is not None and r.message_seq < start_seq
    ]
    items: list[Resolved] = []
    seen: set[str] = set()
    for record in dropped:
        if record.sha256 in seen:
            continue
        seen.add(record.sha256)
        found = resolve_record(record, resolver)
        if found is None:
            notices.append(f"{record.name} is no longer available and was left out.")
        else:
            items.append(found)
    needs = [counter.count(item.text) for item in items]
    labels = ["FILE" if i.spec.kind in ("path", STORED) else i.spec.kind.upper() for i in items]
    empty = [render_block(lb, i.name, i.kind, i.sha256, "") for lb, i in zip(labels, items)]
    overhead = counter.count(render_carried_files(empty)) if items else 0
    overhead += JOIN_SLACK_TOKENS * len(items)
    content_budget = budget_tokens - overhead
    carried = ""
    for _ in range(4):  # joins may tokenize a little differently: shrink until it fits
        grants = fit_budget(needs, max(0, content_budget))
        blocks = []
        left_out = []
        for item, label, need, grant in zip(items, labels, needs, grants):
            if grant <= 0:
                left_out.append(item.name)
                continue
            text = item.text
            if grant < need:
                picked = select(item, grant, need, start_seq) if select is not None else None
                text = picked[0] if picked else truncate_to_tokens(item.text, need, grant, counter)[0]
            blocks.append(render_block(label, item.name, item.kind, item.sha256, text))
        carried = render_carried_files(blocks)
        excess = counter.count(carried) - max(0, budget_tokens)
        if excess <= 0:
            break
        content_budget -= excess + JOIN_SLACK_TOKENS
    else:
        carried, left_out = "", [item.name for item in items]
    for name in left_out:
        notices.append(f"{name} no longer fits the context window and was left out.")
    return carried


def resolve_record(record: AttachmentRecord, resolver: Resolver) -> Resolved | None:
    """An earlier attachment's text again: from the extraction cache, else from its
    source (a stored file, a path); None when it is no longer available."""
    cached = resolver.cached_extract(record.sha256)
    if cached is not None:
        return Resolved(AttachmentSpec(record.kind, record.name), record.name, record.path,
                        record.sha256, cached.text, cached.kind, cached.notes, cached.sections)
    spec = AttachmentSpec(STORED, record.name) if record.kind == STORED else None
    if spec is None and record.path:
        spec = AttachmentSpec("path", record.path)
    if spec is None:
        return None
    try:
        return resolver.resolve(spec)
    except NbChatError:
        return None
