"""The prompt layout: an append-only log, so last turn's prompt prefixes this turn's.

The messages of a turn are::

    system     the session's system prompt, fixed for the session
    user       earlier turn 1 exactly as it was rendered and sent (question + files)
    assistant  earlier answer 1 exactly as received
    ...
    user       this turn: files, recalled context, then the question

Nothing that was sent is ever rebuilt: earlier user messages are replayed from their
stored ``rendered`` text, and no clock, id or counter precedes old turns. The server can
therefore reuse its KV cache for everything but the new message.

When the prompt would overflow the context window, :func:`plan_compaction` drops the
oldest turns in one large step (until the history uses about half the window), and the
dropped turns' files come back as one "files shared earlier" block at the head of the
first kept user message. That block is stored with the session, so the new layout is
again stable until the next compaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nbchat.core.store import StoredMessage

__all__ = [
    "HistoryTurn",
    "history_turns",
    "build_messages",
    "render_block",
    "render_user_message",
    "render_carried_files",
    "plan_compaction",
    "MESSAGE_OVERHEAD_TOKENS",
]

# Tokens a chat template adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 5

EARLIER_FILES_HEADING = "Files shared earlier in this conversation:"
RECALL_HEADING = "Relevant earlier conversation (retrieved from past messages):"


@dataclass(frozen=True)
class HistoryTurn:
    """One earlier exchange: the user message as sent and the answer as received."""

    user: StoredMessage
    assistant: StoredMessage | None

    @property
    def tokens(self) -> int:
        total = (self.user.tokens or 0) + MESSAGE_OVERHEAD_TOKENS
        if self.assistant is not None:
            total += (self.assistant.tokens or 0) + MESSAGE_OVERHEAD_TOKENS
        return total


def history_turns(messages: Sequence[StoredMessage]) -> list[HistoryTurn]:
    """Pair stored messages into turns that belong in the prompt.

    A user message whose answer failed with no text (or never came) is left out: the
    model gets no dangling question, and the user's text stays stored all the same.
    A partial answer stays in, as received.
    """
    turns: list[HistoryTurn] = []
    pending: StoredMessage | None = None
    for message in messages:
        if message.role == "user":
            pending = message
        elif pending is not None:
            if message.content or message.status == "complete":
                turns.append(HistoryTurn(pending, message))
            pending = None
    return turns


def render_block(label: str, name: str, kind: str, sha256: str, text: str) -> str:
    """An attachment between markers that its own content cannot forge.

    The marker carries the start of the content's sha256, which a file cannot contain
    about itself, so "=== END FILE" inside a file cannot close the block early.
    """
    name = "".join(ch if ch.isprintable() else " " for ch in name)  # no forged marker lines
    tag = f"{label} {name}"
    return (
        f"=== BEGIN {tag} ({kind}, sha256:{sha256[:12]}) ===\n"
        f"{text}\n"
        f"=== END {tag} (sha256:{sha256[:12]}) ==="
    )


def render_user_message(question: str, blocks: Sequence[str], recalled: str = "") -> str:
    """This turn's user message: attachment blocks, recalled context, then the question."""
    parts = [*blocks]
    if recalled:
        parts.append(f"{RECALL_HEADING}\n{recalled}")
    parts.append(question)
    return "\n\n".join(parts)


def render_carried_files(blocks: Sequence[str]) -> str:
    """The block of dropped turns' files, placed at the head of the first kept message."""
    if not blocks:
        return ""
    return EARLIER_FILES_HEADING + "\n\n" + "\n\n".join(blocks) + "\n\n"


def build_messages(
    system_prompt: str,
    turns: Sequence[HistoryTurn],
    carried_files: str,
    current_user: str,
) -> list[dict[str, str]]:
    """The OpenAI-style message list for this turn."""
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    for index, turn in enumerate(turns):
        user_text = turn.user.rendered
        if index == 0 and carried_files:
            user_text = carried_files + user_text
        messages.append({"role": "user", "content": user_text})
        if turn.assistant is not None:
            messages.append({"role": "assistant", "content": turn.assistant.rendered})
    if not turns and carried_files:
        current_user = carried_files + current_user
    messages.append({"role": "user", "content": current_user})
    return messages


def plan_compaction(turn_tokens: Sequence[int], keep_tokens: int) -> int:
    """Index of the first turn to keep so that the kept turns use at most ``keep_tokens``.

    Keeps the newest turns; returns ``len(turn_tokens)`` when none fits.
    """
    used = 0
    first = len(turn_tokens)
    for index in range(len(turn_tokens) - 1, -1, -1):
        if used + turn_tokens[index] > keep_tokens:
            break
        used += turn_tokens[index]
        first = index
    return first
