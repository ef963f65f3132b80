"""Sharing a token budget among attachments by water-filling, and cutting visibly.

An even split wastes what small files do not need. Water-filling gives every file
``min(need, fair share)``, where the fair share is what is left divided by the files
not yet served, smallest first: small files keep all their text and the large ones
share the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from nbchat.core.events import TokenCounter

__all__ = [
    "fit_budget",
    "truncate_to_tokens",
    "truncation_note",
    "NOTE_RESERVE_TOKENS",
    "FRESH_FILES_SHARE",
    "EARLIER_PASSAGES_SHARE",
    "CARRIED_FILES_SHARE",
    "COMPACTION_KEEP_SHARE",
]

# Room kept inside a cut file's share for the "[truncated: ...]" note itself.
NOTE_RESERVE_TOKENS = 24

# Shares of the prompt's room (the context window less the answer's max_tokens), so that
# a conversation about a large file goes on for several turns between compactions:
#: at most this much for one turn's new attachments (with attachment_budget);
FRESH_FILES_SHARE = 0.45
#: at most this much for passages of earlier files brought into a later turn's message
#: (with history_files_budget);
EARLIER_PASSAGES_SHARE = 0.15
#: at most this much for the files a compaction carries past the turns it drops;
CARRIED_FILES_SHARE = 0.20
#: a compaction keeps the newest turns that fit in this much (one large step).
COMPACTION_KEEP_SHARE = 0.25


def fit_budget(needs: Sequence[int], budget: int) -> list[int]:
    """Tokens granted to each need, in the same order; their sum never exceeds ``budget``."""
    grants = [0] * len(needs)
    remaining = max(0, budget)
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    left = len(order)
    for index in order:
        share = remaining // left
        grant = min(max(0, needs[index]), share)
        grants[index] = grant
        remaining -= grant
        left -= 1
    return grants


def truncation_note(kept_tokens: int, total_tokens: int) -> str:
    return f"[truncated: first ~{kept_tokens:,} of ~{total_tokens:,} tokens]"


def truncate_to_tokens(
    text: str, total_tokens: int, limit_tokens: int, counter: TokenCounter
) -> tuple[str, int]:
    """Cut ``text`` to at most ``limit_tokens`` including the visible note.

    Returns the cut text (ending with the note) and its token count. The cut falls on a
    line or word boundary near the proportional point, then shrinks until it fits.
    """
    room = max(0, limit_tokens - NOTE_RESERVE_TOKENS)
    cut = int(len(text) * room / max(1, total_tokens))
    for _ in range(12):
        head = _clean_cut(text, cut)
        kept = counter.count(head) if head else 0
        note = truncation_note(kept, total_tokens)
        candidate = f"{head}\n{note}" if head else note
        used = counter.count(candidate)
        if used <= limit_tokens or cut == 0:
            return candidate, used
        cut = int(cut * min(0.95, limit_tokens / max(1, used)))
    note = truncation_note(0, total_tokens)
    return note, counter.count(note)


def _clean_cut(text: str, cut: int) -> str:
    """``text[:cut]`` moved back to the last line break (or space) in its final fifth."""
    if cut >= len(text):
        return text
    if cut <= 0:
        return ""
    floor = cut - max(1, cut // 5)
    for sep in ("\n", " "):
        at = text.rfind(sep, floor, cut)
        if at > 0:
            return text[:at].rstrip()
    return text[:cut]
