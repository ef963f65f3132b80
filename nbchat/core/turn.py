"""One chat turn: attachments -> extraction -> budgets -> layout -> stream -> store.

:func:`prepare_turn` reads (the store, the files) and writes nothing: it either returns a
:class:`PreparedTurn` with the exact messages and a token report, or raises one error
that lists every failing attachment. :func:`run_turn` stores the user's message and the
turn's bookkeeping in one transaction, streams the answer, and stores the answer (or the
partial answer, marked) in a second one, whatever stops the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

from nbchat.core.attachments import (
    STORED,
    AttachmentSpec,
    Resolved,
    Resolver,
    stored_spec,
)
from nbchat.core.budget import fit_budget, truncate_to_tokens
from nbchat.core.errors import BackendError, BudgetError, NbChatError
from nbchat.core.events import Backend, Done, PromptProgress, StreamError, TextDelta, Usage
from nbchat.core.layout import (
    MESSAGE_OVERHEAD_TOKENS,
    HistoryTurn,
    build_messages,
    history_turns,
    plan_compaction,
    render_block,
    render_carried_files,
    render_user_message,
)
from nbchat.core.references import find_references
from nbchat.core.settings import Settings
from nbchat.core.store import AttachmentRecord, Session, Store, StoredMessage
from nbchat.core.tokens import CachedCounter

__all__ = [
    "PartTokens",
    "TokenReport",
    "PreparedTurn",
    "NewSession",
    "TurnResult",
    "prepare_turn",
    "count_whole_prompt",
    "run_turn",
    "importance",
]


@dataclass(frozen=True)
class PartTokens:
    """Tokens of one part of the prompt: kept in the prompt, and in full."""

    name: str
    kind: str
    kept_tokens: int
    total_tokens: int
    note: str = ""

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
        if self.recall_tokens:
            rows.append(("recalled context", "", self.recall_tokens, self.recall_tokens))
        rows.append(("question", "", self.question_tokens, self.question_tokens))
        head = "part (each counted alone" + ("" if self.parts_exact else ", estimated") + ")"
        width = max(len(head), *(len(r[0]) for r in rows))
        lines = [f"{head:<{width}}  {'kind':<9} {'kept':>8} {'of':>8}"]
        for label, kind, kept, total in rows:
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
    attachments: list[tuple[Resolved, PartTokens]]
    compaction: tuple[int, str] | None
    settings: Settings
    resolver: Resolver
    counter: CachedCounter

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

# Tokens allowed for the separators around each block: a join can merge or split a
# token at a boundary, which the per-part counts do not see.
JOIN_SLACK_TOKENS = 4


def importance(role: str, text: str, attachment_count: int = 0) -> float:
    """A rough 0..1 score of how worth recalling a message is (longer, with files, asked)."""
    score = 0.3 + min(0.3, len(text) / 4000)
    if attachment_count:
        score += 0.2
    if role == "user" and "?" in text:
        score += 0.1
    if role == "assistant" and len(text) < 20:
        score -= 0.1
    return round(max(0.0, min(1.0, score)), 3)


def prepare_turn(
    store: Store,
    settings: Settings,
    question: str,
    specs: Sequence[AttachmentSpec],
    *,
    session: Session | None,
    new_session: NewSession | None,
    counter: CachedCounter,
    window_tokens: int,
    no_history: bool = False,
    system_prompt: str | None = None,
    recalled: str = "",
) -> PreparedTurn:
    """Build the turn's messages; raise before anything is written when it cannot be sent."""
    if not question.strip():
        raise NbChatError("The prompt is empty: write your question in the cell or the input box.")
    notices: list[str] = []
    system = system_prompt if system_prompt is not None else (
        session.system_prompt if session is not None else settings.system_prompt
    )
    if session is not None and system_prompt is not None and system_prompt != session.system_prompt:
        notices.append("The session's system prompt changes from this turn on.")

    resolver = Resolver(store, settings.max_file_bytes, settings.max_inflated_bytes)
    question_text, inline = _resolve_references(question, store, notices)
    all_specs = [*specs, *(spec for _, spec in inline)]
    resolved = resolver.resolve_all(all_specs)
    files, inline_resolved = resolved[: len(specs)], resolved[len(specs):]

    # This session's attachment records, read once: for repeats, the report, compaction.
    records = (
        store.attachments(session.id, include_forgotten=True)
        if session is not None and not no_history
        else []
    )
    # Files already in this conversation's context are not sent twice.
    in_context = _in_context_shas(records, session) if session is not None else set()
    fresh: list[Resolved] = []
    repeats: list[Resolved] = []
    seen: set[str] = set()
    for item in [*files, *inline_resolved]:
        if item.sha256 in in_context:
            repeats.append(item)
        elif item.sha256 not in seen:
            fresh.append(item)
        seen.add(item.sha256)

    system_tokens = counter.count(system) + MESSAGE_OVERHEAD_TOKENS if system else 0
    recall_tokens = counter.count(recalled) if recalled else 0
    question_tokens = counter.count(question_text)
    answer_room = window_tokens - settings.max_tokens
    if answer_room <= 0:
        verb = "exceeds" if answer_room < 0 else "fills"
        raise BudgetError(
            f"max_tokens ({settings.max_tokens:,}) {verb} the model's context window "
            f"({window_tokens:,} tokens), leaving no room for the question. Lower it below "
            f"{window_tokens:,} (--max-tokens, or c.NbChat.max_tokens), or use a model with "
            "a larger context window."
        )
    free_tokens = answer_room - system_tokens - question_tokens - recall_tokens - 3 * MESSAGE_OVERHEAD_TOKENS
    if free_tokens < 0:
        raise BudgetError(
            f"The question alone needs about {question_tokens + system_tokens:,} tokens, more than "
            f"the {answer_room:,} the model's context window ({window_tokens:,}) leaves after the "
            f"answer's max_tokens ({settings.max_tokens:,}). Shorten it, lower max_tokens, or use a "
            "model with a larger context window."
        )
    needs = [counter.count(item.text) for item in fresh]
    markers = sum(counter.count(render_block(_label(i), i.name, i.kind, i.sha256, "")) for i in fresh)
    markers += sum(counter.count(_repeat_note(i)) for i in repeats)
    slack = JOIN_SLACK_TOKENS * (len(fresh) + len(repeats) + 2)
    budget = max(0, min(settings.attachment_budget, free_tokens - markers - slack))
    grants = fit_budget(needs, budget)
    blocks: dict[str, str] = {}
    parts: list[tuple[Resolved, PartTokens]] = []
    for item, need, grant in zip(fresh, needs, grants):
        text, kept = item.text, need
        if grant < need:
            text, kept = truncate_to_tokens(item.text, need, grant, counter)
        blocks[item.sha256] = render_block(_label(item), item.name, item.kind, item.sha256, text)
        parts.append((item, PartTokens(item.name, item.kind, kept, need, "; ".join(item.notes))))
    for item in repeats:
        blocks.setdefault(item.sha256, _repeat_note(item))
        parts.append((item, PartTokens(item.name, item.kind, 0, 0, "already in context")))
    if any(part.truncated for _, part in parts):
        cut = [p.name for _, p in parts if p.truncated]
        notices.append(
            f"Attachments were cut to fit the budget of {budget:,} tokens: {', '.join(cut)}."
        )

    question_rendered = _inline_blocks(question_text, inline, inline_resolved, blocks)
    inline_shas = {item.sha256 for item in inline_resolved}
    file_blocks = [blocks[item.sha256] for item in files if item.sha256 not in inline_shas]
    rendered = render_user_message(question_rendered, list(dict.fromkeys(file_blocks)), recalled)
    rendered_tokens = counter.count(rendered)
    current_tokens = rendered_tokens + MESSAGE_OVERHEAD_TOKENS

    turns: list[HistoryTurn] = []
    carried = ""
    compaction: tuple[int, str] | None = None
    dropped = 0
    if session is not None and not no_history:
        stored = store.messages(session.id, from_seq=session.history_start_seq)
        turns = history_turns(stored)
        carried = session.carried_files
        limit = answer_room - system_tokens - current_tokens
        history_tokens = sum(t.tokens for t in turns) + counter.count(carried)
        if history_tokens > limit:
            keep = min(window_tokens // 2, limit)
            first = plan_compaction([t.tokens for t in turns], keep)
            dropped = first
            kept_turns = turns[first:]
            start_seq = kept_turns[0].user.seq if kept_turns else (stored[-1].seq + 1 if stored else 0)
            room = limit - sum(t.tokens for t in kept_turns)
            carried = _carry_files(
                records, resolver, start_seq, min(settings.history_files_budget, room),
                counter, notices,
            )
            turns = kept_turns
            compaction = (start_seq, carried)
            notices.append(
                f"History compacted: {dropped} oldest turn(s) dropped to fit the "
                f"context window ({window_tokens:,} tokens); their files are re-included "
                "and past messages stay searchable with `%chat recall`."
            )

    messages = build_messages(system, turns, carried, rendered)
    history_tokens = sum(t.tokens for t in turns)
    carried_tokens = counter.count(carried) if carried else 0
    report = TokenReport(
        system_tokens=system_tokens,
        history_tokens=history_tokens + carried_tokens,
        history_turns=len(turns),
        earlier_files=tuple(_earlier_parts(records)),
        attachments=tuple(part for _, part in parts),
        recall_tokens=recall_tokens,
        question_tokens=question_tokens,
        total_tokens=system_tokens + history_tokens + carried_tokens + current_tokens,
        window_tokens=window_tokens,
        max_tokens=settings.max_tokens,
        attachment_budget=budget,
        exact=False,  # the parts' sum; count_whole_prompt makes it exact
        tokenizer=counter.tokenizer_id,
        dropped_turns=dropped,
        compacted=compaction is not None,
        notices=tuple(notices),
        parts_exact=counter.exact,
    )
    return PreparedTurn(
        messages=messages,
        report=report,
        question=question,
        rendered=rendered,
        rendered_tokens=rendered_tokens,
        session=session,
        new_session=new_session,
        system_prompt=system,
        attachments=parts,
        compaction=compaction,
        settings=settings,
        resolver=resolver,
        counter=counter,
    )


def count_whole_prompt(prepared: PreparedTurn) -> PreparedTurn:
    """Make the report's total the server's count of the whole prompt, when it can say.

    The messages go through the server's chat template and tokenizer (two requests on
    llama-server, cached by the messages' hash), so the total is what the server will
    evaluate, not the parts' sum. Shown reports (dry runs, the token meter) ask for it;
    a turn being sent does not pay for it. Without such a server the report keeps its
    estimated total, labelled so.
    """
    total = prepared.counter.count_prompt(prepared.messages)
    if total is None:
        return prepared
    return replace(prepared, report=replace(prepared.report, total_tokens=total, exact=True))


def commit_user_turn(store: Store, prepared: PreparedTurn) -> tuple[Session, StoredMessage]:
    """Store the question (as the user wrote it), its attachments and caches, atomically."""
    with store.transaction() as db:
        session = prepared.session
        if session is None:
            spec = prepared.new_session or NewSession("", None, prepared.system_prompt, None, None)
            session = store.create_session(
                title=spec.title or _title_from(prepared.question),
                notebook=spec.notebook,
                system_prompt=prepared.system_prompt,
                model=spec.model,
                backend=spec.backend,
                parent_id=spec.parent_id,
                db=db,
            )
        elif prepared.system_prompt != session.system_prompt:
            store.set_system_prompt(db, session.id, prepared.system_prompt)
        if prepared.compaction is not None:
            start_seq, carried = prepared.compaction
            store.set_history(
                db, session.id, start_seq=start_seq, carried_files=carried, compacted=True
            )
        message = store.add_message(
            db,
            session_id=session.id,
            role="user",
            content=prepared.question,
            rendered=prepared.rendered,
            importance=importance("user", prepared.question, len(prepared.attachments)),
            tokens=prepared.rendered_tokens,
        )
        for item, part in prepared.attachments:
            store.record_attachment(
                db,
                session_id=session.id,
                message_id=message.id,
                kind=item.record_kind,
                name=item.name,
                path=item.path,
                sha256=item.sha256,
                fingerprint=item.spec.fingerprint,
                total_tokens=part.total_tokens,
                kept_tokens=part.kept_tokens,
            )
        prepared.resolver.flush(store, db)
        prepared.counter.flush(store, db)
    refreshed = store.get_session(session.id)
    assert refreshed is not None
    return refreshed, message


def run_turn(
    store: Store,
    backend: Backend,
    prepared: PreparedTurn,
    *,
    on_stored: Callable[[TurnResult], None] | None = None,
) -> Generator[TurnEvent, None, None]:
    """Store the question, stream the answer, store it; yields deltas, prompt progress,
    usage, then the result.

    Whatever ends the stream — its end, an error, Ctrl-C in the middle of it, or the
    caller closing this iterator — the answer received so far is stored, marked
    ``partial`` (or ``error`` when nothing arrived), exactly once, and ``on_stored``
    gets its result (the only way to learn it when the iterator was closed).
    """
    started = time.perf_counter()
    session, _ = commit_user_turn(store, prepared)
    settings = prepared.settings
    model = settings.resolved_model  # this turn's own, never a backend's earlier one
    received: list[str] = []
    usage: Usage | None = None
    finish: str | None = None
    error: StreamError | None = None
    stored = False

    def store_answer(error: StreamError | None) -> TurnResult:
        nonlocal stored
        text = "".join(received)
        if error is None:
            status = "complete"
        else:
            status = "partial" if text else "error"
        with store.transaction() as db:
            message = store.add_message(
                db,
                session_id=session.id,
                role="assistant",
                content=text,
                rendered=text,
                status=status,
                error_kind=error.kind if error else None,
                error_message=error.message if error else None,
                importance=importance("assistant", text),
                tokens=prepared.counter.count(text) if text else 0,
                usage=usage.as_dict() if usage else {},
                timings=dict(usage.timings) if usage else {},
                model=model,
            )
            prepared.counter.flush(store, db)
        stored = True
        result = TurnResult(
            session_id=session.id,
            message_id=message.id,
            text=text,
            status=status,
            finish_reason=finish,
            usage=usage.as_dict() if usage else {},
            timings=dict(usage.timings) if usage else {},
            error_kind=error.kind if error else None,
            error_message=error.message if error else None,
            report=prepared.report,
            notices=tuple(prepared.notices),
            elapsed_ms=(time.perf_counter() - started) * 1000,
            model=model,
        )
        if on_stored is not None:
            on_stored(result)
        return result

    stream = None
    try:
        stream = backend.stream(
            prepared.messages,
            model=model,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
        )
        for event in stream:
            if isinstance(event, TextDelta):
                received.append(event.text)
                yield event
            elif isinstance(event, Usage):
                usage = event
                yield event
            elif isinstance(event, PromptProgress):
                yield event
            elif isinstance(event, Done):
                finish = event.finish_reason
            elif isinstance(event, StreamError):
                error = event
    except BackendError as exc:
        error = StreamError(exc.kind, str(exc), exc.retry_after)
    except BaseException:
        # Ctrl-C, a stop request (GeneratorExit) or a bug: keep what arrived, then go on.
        _close(stream)
        if not stored:
            store_answer(StreamError("interrupted", "The answer was interrupted."))
        raise
    finally:
        _close(stream)
    yield store_answer(error)


def _close(stream: Iterator[Any] | None) -> None:
    """Close a backend's stream (a generator, usually), releasing its connection."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def _repeat_note(item: Resolved) -> str:
    return (
        f"[{item.name}: unchanged since it was attached earlier in this conversation; "
        "its content is above]"
    )


def _label(item: Resolved) -> str:
    if item.spec.kind == "text":
        return item.spec.label.upper()
    return "FILE"


def _title_from(question: str) -> str:
    line = question.strip().splitlines()[0] if question.strip() else "chat"
    return line[:60] + ("…" if len(line) > 60 else "")


def _resolve_references(
    question: str, store: Store, notices: list[str]
) -> tuple[str, list[tuple[tuple[int, int], AttachmentSpec]]]:
    """Find references; unknown names become a visible note in the text."""
    inline: list[tuple[tuple[int, int], AttachmentSpec]] = []
    pieces: list[str] = []
    last = 0
    offset_shift = 0
    for ref in find_references(question):
        found = store.get_file(ref.name)
        if found is None:
            note = f"[{ref.name}: file not found in the store]"
            notices.append(
                f"{ref.name} is not in the file store; add it with `%chat store PATH`."
            )
            pieces.append(question[last:ref.start] + note)
            offset_shift += len(note) - (ref.end - ref.start)
        else:
            pieces.append(question[last:ref.end])
            start = ref.start + offset_shift
            inline.append(((start, start + ref.end - ref.start), stored_spec(found.name)))
        last = ref.end
    pieces.append(question[last:])
    return "".join(pieces), inline


def _inline_blocks(
    text: str,
    inline: list[tuple[tuple[int, int], AttachmentSpec]],
    resolved: list[Resolved],
    blocks: dict[str, str],
) -> str:
    """Replace each found reference by its file block (back to front keeps offsets)."""
    for ((start, end), _), item in sorted(
        zip(inline, resolved), key=lambda pair: pair[0][0][0], reverse=True
    ):
        text = text[:start] + "\n" + blocks[item.sha256] + "\n" + text[end:]
    return text


def _in_context_shas(records: Sequence[AttachmentRecord], session: Session) -> set[str]:
    """Content already in this session's prompt: kept turns' files and carried files."""
    return {
        record.sha256
        for record in records
        if record.kept_tokens
        and record.kept_tokens >= (record.total_tokens or 0)
        and (record.message_seq or 0) >= session.history_start_seq
    }


def _earlier_parts(records: Sequence[AttachmentRecord]) -> list[PartTokens]:
    """Files attached on earlier turns of this session, for the report."""
    return [
        PartTokens(
            record.name, record.kind, record.kept_tokens or 0, record.total_tokens or 0,
            f"turn {(record.message_seq or 0) // 2 + 1}",
        )
        for record in records
        if not record.forgotten
    ]


def _carry_files(
    records: Sequence[AttachmentRecord],
    resolver: Resolver,
    start_seq: int,
    budget_tokens: int,
    counter: CachedCounter,
    notices: list[str],
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
        cached = resolver.cached_extract(record.sha256)
        if cached is not None:
            items.append(
                Resolved(AttachmentSpec(record.kind, record.name), record.name, record.path,
                         record.sha256, cached.text, cached.kind, cached.notes, cached.sections)
            )
            continue
        spec = AttachmentSpec(STORED, record.name) if record.kind == STORED else None
        if spec is None and record.path:
            spec = AttachmentSpec("path", record.path)
        try:
            if spec is None:
                raise NbChatError("no source")
            items.append(resolver.resolve(spec))
        except NbChatError:
            notices.append(f"{record.name} is no longer available and was left out.")
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
                text, _ = truncate_to_tokens(item.text, need, grant, counter)
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
