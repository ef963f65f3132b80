"""The records of a turn: what a prepared turn holds, its token report, its result.

Frozen dataclasses all: a layer that adds to a prepared turn makes a new one
(:meth:`PreparedTurn.with_notices`), so what :func:`~nbchat.core.turn.prepare_turn`
built is what is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Union

from nbchat.core.attachments import Resolved, Resolver
from nbchat.core.events import PromptProgress, TextDelta, Usage
from nbchat.core.settings import Settings
from nbchat.core.store import Session, StoredMessage
from nbchat.core.tokens import CachedCounter

__all__ = [
    "PartTokens",
    "TokenReport",
    "NewSession",
    "AttachedPart",
    "Compaction",
    "PreparedTurn",
    "TurnResult",
    "TurnEvent",
]


@dataclass(frozen=True)
class PartTokens:
    """Tokens of one part of the prompt: kept in the prompt, and in full."""

    name: str
    kind: str
    kept_tokens: int
    total_tokens: int
    note: str = ""
    # The passages sent when only parts of a file were: "page 47 (matched: tunnel)".
    passages: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.kept_tokens < self.total_tokens


@dataclass(frozen=True)
class TokenReport:
    """Where the prompt's tokens go, for ``--dry-run`` and the token meter.

    Each part is counted alone (what the budgets use). ``total_tokens`` is exact
    (``exact``) when the server counted the whole prompt as it will evaluate it, chat
    template included (:func:`count_whole_prompt`): it then equals the turn's
    ``prompt_n + cache_n`` on llama-server. Otherwise it is the parts' sum plus an
    allowance for the template, an estimate. ``parts_exact`` says whether the parts were
    counted by the model's tokenizer or estimated.
    """

    system_tokens: int
    history_tokens: int
    history_turns: int
    earlier_files: tuple[PartTokens, ...]
    attachments: tuple[PartTokens, ...]
    recall_tokens: int
    question_tokens: int
    total_tokens: int
    window_tokens: int
    max_tokens: int
    attachment_budget: int
    exact: bool
    tokenizer: str
    dropped_turns: int = 0
    compacted: bool = False
    notices: tuple[str, ...] = ()
    parts_exact: bool = False
    # Passages of earlier files that this turn's message brings in, one part per file.
    brought_in: tuple[PartTokens, ...] = ()

    @property
    def attachment_tokens(self) -> int:
        return sum(part.kept_tokens for part in self.attachments)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["attachment_tokens"] = self.attachment_tokens
        return data

    def as_text(self) -> str:
        """A small plain-text table: the parts, each counted alone, then the total."""
        rows = [("system prompt", "", self.system_tokens, self.system_tokens)]
        rows.append(
            (f"history ({self.history_turns} turns)", "", self.history_tokens, self.history_tokens)
        )
        for part in self.earlier_files:
            rows.append((f"  earlier file {part.name}", part.kind, part.kept_tokens, part.total_tokens))
        for part in self.attachments:
            rows.append((f"attachment {part.name}", part.kind, part.kept_tokens, part.total_tokens))
            rows += [(f"  passage {p}", "", -1, -1) for p in part.passages]
        for part in self.brought_in:
            rows.append((f"passages of {part.name}", part.kind, part.kept_tokens, part.kept_tokens))
            rows += [(f"  passage {p}", "", -1, -1) for p in part.passages]
        if self.recall_tokens:
            rows.append(("recalled context", "", self.recall_tokens, self.recall_tokens))
        rows.append(("question", "", self.question_tokens, self.question_tokens))
        head = "part (each counted alone" + ("" if self.parts_exact else ", estimated") + ")"
        width = max(len(head), *(len(r[0]) for r in rows if r[2] >= 0))
        lines = [f"{head:<{width}}  {'kind':<9} {'kept':>8} {'of':>8}"]
        for label, kind, kept, total in rows:
            if kept < 0:  # a passage: its line says where it comes from and why
                lines.append(label)
                continue
            mark = "  (cut)" if kept < total else ""
            lines.append(f"{label:<{width}}  {kind:<9} {kept:>8,} {total:>8,}{mark}")
        if self.exact:
            figure = f"{self.total_tokens:,}"
            counted = "exact: the whole prompt as the server templates and tokenizes it"
        else:
            figure = f"~{self.total_tokens:,}"
            counted = "an estimate: the parts plus an allowance for the chat template"
        lines.append(
            f"total {figure} of {self.window_tokens:,} tokens ({counted}; {self.max_tokens:,} kept "
            f"for the answer; attachments {self.attachment_tokens:,} of budget "
            f"{self.attachment_budget:,})"
        )
        lines += [f"note: {notice}" for notice in self.notices]
        return "\n".join(lines)


@dataclass(frozen=True)
class NewSession:
    """A session to create when the turn is stored (a dry run creates none)."""

    title: str
    notebook: str | None
    system_prompt: str
    model: str | None
    backend: str | None
    parent_id: str | None = None


class AttachedPart(NamedTuple):
    """One attachment of the turn: its text, and its tokens in the prompt."""

    item: Resolved
    tokens: PartTokens


class Compaction(NamedTuple):
    """A compaction this turn stores: where the replayed history now starts, and the
    block of files carried from the turns it drops."""

    start_seq: int
    carried_files: str


@dataclass(frozen=True)
class PreparedTurn:
    """Everything about a turn before it is sent: ``messages`` is exactly what goes out.

    Frozen: a layer that adds to it (the client's recall notices) makes a new one with
    :meth:`with_notices`. ``notices`` is the one list of notices; the report carries the
    same ones for ``--dry-run``.
    """

    messages: list[dict[str, str]]
    report: TokenReport
    question: str
    rendered: str
    rendered_tokens: int
    session: Session | None
    new_session: NewSession | None
    system_prompt: str
    attachments: tuple[AttachedPart, ...]
    compaction: Compaction | None
    settings: Settings
    resolver: Resolver
    counter: CachedCounter
    # Per content sha256, the chunks of partly sent files that this message carries
    # (its files' passages, passages brought in, a compaction's carried passages).
    sent_chunks: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def notices(self) -> tuple[str, ...]:
        return self.report.notices

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session is not None else None

    def with_notices(self, notices: Sequence[str]) -> "PreparedTurn":
        """This turn with ``notices`` added (itself when there are none)."""
        if not notices:
            return self
        report = replace(self.report, notices=(*self.report.notices, *notices))
        return replace(self, report=report)


@dataclass(frozen=True)
class TurnResult:
    """A finished turn, as stored."""

    session_id: str
    message_id: int
    text: str
    status: str
    finish_reason: str | None
    usage: dict[str, Any]
    timings: dict[str, Any]
    error_kind: str | None
    error_message: str | None
    report: TokenReport
    notices: tuple[str, ...] = ()
    elapsed_ms: float = 0.0
    model: str | None = None  # the model the request named (None: the server's default)

    @classmethod
    def from_stored(
        cls,
        message: StoredMessage,
        report: "TokenReport",
        notices: Sequence[str] = (),
        elapsed_ms: float = 0.0,
    ) -> "TurnResult":
        """The result of a turn read back from its stored answer (finish reason unknown)."""
        return cls(
            session_id=message.session_id,
            message_id=message.id,
            text=message.content,
            status=message.status,
            finish_reason=None,
            usage=message.usage,
            timings=message.timings,
            error_kind=message.error_kind,
            error_message=message.error_message,
            report=report,
            notices=tuple(notices),
            elapsed_ms=elapsed_ms,
            model=message.model,
        )


TurnEvent = Union[TextDelta, PromptProgress, Usage, TurnResult]
