"""One chat turn, step by step: attachments -> extraction -> budgets -> layout -> stream -> store.

Its records live in :mod:`~nbchat.core.records`, the history's compaction in
:mod:`~nbchat.core.compaction`; this module holds the steps.

:func:`prepare_turn` reads (the store, the files) and writes nothing: it either returns a
:class:`PreparedTurn` with the exact messages and a token report, or raises one error
that lists every failing attachment. :func:`run_turn` stores the user's message and the
turn's bookkeeping in one transaction, streams the answer, and stores the answer (or the
partial answer, marked) in a second one, whatever stops the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nbchat.core.attachments import AttachmentSpec, Resolved, Resolver, stored_spec
from nbchat.core.budget import (
    CARRIED_FILES_SHARE,
    COMPACTION_KEEP_SHARE,
    EARLIER_PASSAGES_SHARE,
    FRESH_FILES_SHARE,
    fit_budget,
    truncate_to_tokens,
)
from nbchat.core.chunk_words import ChunkWords, ChunkWordsCache
from nbchat.core.compaction import (
    JOIN_SLACK_TOKENS,
    FittedHistory,
    earlier_parts,
    fit_history,
    in_context_shas,
    resolve_record,
)
from nbchat.core.errors import BackendError, BackendUnreachable, BudgetError, NbChatError
from nbchat.core.events import Backend, Done, Event, PromptProgress, StreamError, TextDelta, Usage
from nbchat.core.interrupts import deferred_interrupts, raise_if_interrupted
from nbchat.core.layout import (
    MESSAGE_OVERHEAD_TOKENS,
    build_messages,
    render_block,
    render_user_message,
)
from nbchat.core.records import (
    AttachedPart,
    NewSession,
    PartTokens,
    PreparedTurn,
    TokenReport,
    TurnEvent,
    TurnResult,
)
from nbchat.core.passages import (
    BroughtIn,
    Candidate,
    QueryVector,
    Ranking,
    Selection,
    bring_in,
    describe_passages,
    rank_chunks,
    select_passages,
)
from nbchat.core.ranking import query_terms
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
    "TurnEvent",
    "prepare_turn",
    "count_whole_prompt",
    "commit_user_turn",
    "run_turn",
    "importance",
]


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
    query_vector: Callable[[], QueryVector | None] | None = None,
    chunk_words: ChunkWordsCache | None = None,
) -> PreparedTurn:
    """Build the turn's messages; raise before anything is written when it cannot be sent.

    ``query_vector`` gives the question's embedding (when the memory has an embeddings
    server), so a large file's chunks rank by meaning too, fused with their words; it is
    called only when a file's passages are ranked, so other turns never wait for it.
    ``chunk_words`` keeps large files' chunks and words between turns (the client's
    kernel-long cache); without it this turn splits them for itself.

    The steps: the system prompt; the attachments resolved (references in the question
    included); the room left once the answer, system prompt and question are counted;
    the attachments fitted to it; the user message; the history fitted after it.
    """
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
    resolved = resolver.resolve_all([*specs, *(spec for _, spec in inline)])
    files, inline_resolved = resolved[: len(specs)], resolved[len(specs):]

    # This session's attachment records, read once: for repeats, the report, compaction.
    history = session if session is not None and not no_history else None
    records = store.attachments(history.id, include_forgotten=True) if history else []
    fresh, repeats = _split_repeats([*files, *inline_resolved], records, history)
    partial = _partial_shas(records)

    system_tokens = counter.count(system) + MESSAGE_OVERHEAD_TOKENS if system else 0
    recall_tokens = counter.count(recalled) if recalled else 0
    question_tokens = counter.count(question_text)
    answer_room = _answer_room(settings, window_tokens)
    free_tokens = answer_room - system_tokens - question_tokens - recall_tokens - 3 * MESSAGE_OVERHEAD_TOKENS
    if free_tokens < 0:
        raise BudgetError(
            f"The question alone needs about {question_tokens + system_tokens:,} tokens, more than "
            f"the {answer_room:,} the model's context window ({window_tokens:,}) leaves after the "
            f"answer's max_tokens ({settings.max_tokens:,}). Shorten it, lower max_tokens, or use a "
            "model with a larger context window."
        )
    picker = _Picker(
        store, counter, query_terms(question_text),
        chunk_words if chunk_words is not None else ChunkWordsCache(), query_vector,
    )
    budget, blocks, parts = _fit_attachments(
        fresh, repeats, free_tokens, settings, counter, answer_room, picker, partial
    )
    if any(part.tokens.truncated and not part.tokens.passages for part in parts):
        cut = [p.tokens.name for p in parts if p.tokens.truncated and not p.tokens.passages]
        notices.append(
            f"Attachments were cut to fit the budget of {budget:,} tokens: {', '.join(cut)}."
        )
    notices.extend(part.tokens.note for part in parts if part.tokens.passages)

    question_rendered = _inline_blocks(question_text, inline, inline_resolved, blocks)
    inline_shas = {item.sha256 for item in inline_resolved}
    file_blocks = [blocks[item.sha256] for item in files if item.sha256 not in inline_shas]
    file_blocks = list(dict.fromkeys(file_blocks))
    brought: list[BroughtIn] = []
    if history is not None:
        left = answer_room - system_tokens - recall_tokens - 3 * MESSAGE_OVERHEAD_TOKENS
        left -= counter.count(render_user_message(question_rendered, file_blocks, recalled))
        brought = _bring_in_earlier(
            store, history, records, resolver, picker, {i.sha256 for i in fresh},
            min(settings.history_files_budget, int(EARLIER_PASSAGES_SHARE * answer_room), left),
        )
    passage_blocks = [block for item in brought for block in item.blocks]
    rendered = render_user_message(question_rendered, [*file_blocks, *passage_blocks], recalled)
    rendered_tokens = counter.count(rendered)
    current_tokens = rendered_tokens + MESSAGE_OVERHEAD_TOKENS

    fitted = FittedHistory((), "", None, 0, ())
    if history is not None:
        fitted = fit_history(
            store.messages(history.id, from_seq=history.history_start_seq),
            history,
            records,
            resolver,
            counter,
            limit_tokens=answer_room - system_tokens - current_tokens,
            window_tokens=window_tokens,
            files_budget_tokens=min(
                settings.history_files_budget, int(CARRIED_FILES_SHARE * answer_room)
            ),
            keep_tokens=int(COMPACTION_KEEP_SHARE * answer_room),
            select=lambda item, grant, need, start_seq: picker.carry(
                item, grant, need, store.sent_chunks(history.id, from_seq=start_seq)
            ),
        )
        notices.extend(fitted.notices)

    messages = build_messages(system, list(fitted.turns), fitted.carried_files, rendered)
    history_tokens = sum(t.tokens for t in fitted.turns)
    carried_tokens = counter.count(fitted.carried_files) if fitted.carried_files else 0
    report = TokenReport(
        system_tokens=system_tokens,
        history_tokens=history_tokens + carried_tokens,
        history_turns=len(fitted.turns),
        earlier_files=tuple(earlier_parts(records)),
        attachments=tuple(part.tokens for part in parts),
        recall_tokens=recall_tokens,
        question_tokens=question_tokens,
        total_tokens=system_tokens + history_tokens + carried_tokens + current_tokens,
        window_tokens=window_tokens,
        max_tokens=settings.max_tokens,
        attachment_budget=budget,
        exact=False,  # the parts' sum; count_whole_prompt makes it exact
        tokenizer=counter.tokenizer_id,
        dropped_turns=fitted.dropped,
        compacted=fitted.compaction is not None,
        notices=tuple(notices),
        parts_exact=counter.exact,
        brought_in=tuple(
            PartTokens(b.name, "passages", b.tokens, b.tokens, "brought in for this question",
                       describe_passages(b.passages))
            for b in brought
        ),
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
        compaction=fitted.compaction,
        settings=settings,
        resolver=resolver,
        counter=counter,
        sent_chunks=picker.sent(carried=fitted.compaction is not None),
    )


def _answer_room(settings: Settings, window_tokens: int) -> int:
    """The window's tokens left for the prompt once the answer's are kept aside."""
    answer_room = window_tokens - settings.max_tokens
    if answer_room <= 0:
        verb = "exceeds" if answer_room < 0 else "fills"
        raise BudgetError(
            f"max_tokens ({settings.max_tokens:,}) {verb} the model's context window "
            f"({window_tokens:,} tokens), leaving no room for the question. Lower it below "
            f"{window_tokens:,} (--max-tokens, or c.NbChat.max_tokens), or use a model with "
            "a larger context window."
        )
    return answer_room


def _split_repeats(
    items: Sequence[Resolved], records: Sequence[AttachmentRecord], session: Session | None
) -> tuple[list[Resolved], list[Resolved]]:
    """(fresh, repeats): files already in this conversation's context are not sent twice,
    nor is one content attached twice in a turn. A file sent earlier in part is a repeat
    too: the passages this question needs are brought in (:func:`_bring_in_earlier`)."""
    in_context = in_context_shas(records, session) if session is not None else set()
    in_context |= _partial_shas(records) if session is not None else set()
    fresh: list[Resolved] = []
    repeats: list[Resolved] = []
    seen: set[str] = set()
    for item in items:
        if item.sha256 in in_context:
            repeats.append(item)
        elif item.sha256 not in seen:
            fresh.append(item)
        seen.add(item.sha256)
    return fresh, repeats


def _partial_shas(records: Sequence[AttachmentRecord]) -> set[str]:
    """Content of this session's files that were sent only in part."""
    return {
        r.sha256 for r in records
        if not r.forgotten and (r.kept_tokens or 0) < (r.total_tokens or 0)
    }


def _fit_attachments(
    fresh: Sequence[Resolved],
    repeats: Sequence[Resolved],
    free_tokens: int,
    settings: Settings,
    counter: CachedCounter,
    answer_room: int,
    picker: "_Picker",
    partial: set[str],
) -> tuple[int, dict[str, str], tuple[AttachedPart, ...]]:
    """(budget, each content's block by sha256, the parts): fresh files share the budget
    (water-filling), at most :data:`FRESH_FILES_SHARE` of the room so the conversation
    can go on; a file over its grant sends its head and the passages the question needs
    (a file of one chunk is cut instead); repeats become a one-line note."""
    needs = [counter.count(item.text) for item in fresh]
    markers = sum(counter.count(render_block(_label(i), i.name, i.kind, i.sha256, "")) for i in fresh)
    markers += sum(counter.count(_repeat_note(i, i.sha256 in partial)) for i in repeats)
    slack = JOIN_SLACK_TOKENS * (len(fresh) + len(repeats) + 2)
    budget = max(0, min(
        settings.attachment_budget, int(FRESH_FILES_SHARE * answer_room),
        free_tokens - markers - slack,
    ))
    grants = fit_budget(needs, budget)
    blocks: dict[str, str] = {}
    parts: list[AttachedPart] = []
    for item, need, grant in zip(fresh, needs, grants):
        text, kept, note = item.text, need, "; ".join(item.notes)
        passages: tuple[str, ...] = ()
        if grant < need:
            selection = picker.select(item, grant, need)
            if selection is None:
                text, kept = truncate_to_tokens(item.text, need, grant, counter)
            else:
                text, kept, note = selection.text, selection.kept_tokens, selection.note
                passages = describe_passages(selection.passages)
        blocks[item.sha256] = render_block(_label(item), item.name, item.kind, item.sha256, text)
        parts.append(
            AttachedPart(item, PartTokens(item.name, item.kind, kept, need, note, passages))
        )
    for item in repeats:
        blocks.setdefault(item.sha256, _repeat_note(item, item.sha256 in partial))
        parts.append(AttachedPart(item, PartTokens(item.name, item.kind, 0, 0, "already in context")))
    return budget, blocks, tuple(parts)


@dataclass
class _Picker:
    """Chooses passages of large files for this turn's question, and remembers which
    chunks the turn's message carries (stored with it, see :func:`commit_user_turn`)."""

    store: Store
    counter: CachedCounter
    terms: list[str]
    tables: ChunkWordsCache
    vector_source: Callable[[], QueryVector | None] | None = None
    fresh: dict[str, set[int]] = field(default_factory=dict)
    brought: dict[str, set[int]] = field(default_factory=dict)
    carried: dict[str, set[int]] = field(default_factory=dict)
    _vector: list[QueryVector | None] = field(default_factory=list)

    @property
    def query_vector(self) -> QueryVector | None:
        """The question's vector, asked for once, the first time a ranking needs it."""
        if not self._vector:
            self._vector.append(self.vector_source() if self.vector_source else None)
        return self._vector[0]

    def table(self, item: Resolved) -> ChunkWords:
        """The file's chunks and their words, split once per kernel."""
        from nbchat.core.extract import EXTRACTOR_VERSION

        return self.tables.table(item.sha256, EXTRACTOR_VERSION, item.text, item.sections)

    def ranked(self, item: Resolved) -> Ranking:
        from nbchat.core.extract import EXTRACTOR_VERSION

        return rank_chunks(
            self.store, item.sha256, EXTRACTOR_VERSION, self.table(item), self.terms,
            self.query_vector,
        )

    def select(
        self, item: Resolved, grant: int, need: int, exclude: frozenset[int] = frozenset()
    ) -> Selection | None:
        table = self.table(item)
        if len(table.chunks) < 2:
            return None
        selection = select_passages(
            item.name, item.text, table, self.ranked(item), self.terms,
            grant_tokens=grant, total_tokens=need, counter=self.counter, exclude=exclude,
        )
        if not selection.passages:  # a grant smaller than one chunk: cut the text instead
            return None
        self.fresh[item.sha256] = {p.chunk.index for p in selection.passages}
        return selection

    def carry(
        self, item: Resolved, grant: int, need: int, seen: dict[str, frozenset[int]]
    ) -> tuple[str, int] | None:
        """A compaction's carried passages: none that the kept turns or this message hold."""
        exclude = seen.get(item.sha256, frozenset()) | frozenset(self.brought.get(item.sha256, ()))
        fresh = self.fresh.pop(item.sha256, None)
        selection = self.select(item, grant, need, exclude)
        chosen = self.fresh.pop(item.sha256, set())
        if fresh is not None:
            self.fresh[item.sha256] = fresh
        if selection is None:
            return None
        self.carried[item.sha256] = chosen  # the last call for a file is the one kept
        return selection.text, selection.kept_tokens

    def sent(self, *, carried: bool) -> tuple[tuple[str, tuple[int, ...]], ...]:
        merged: dict[str, set[int]] = {}
        for source in (self.fresh, self.brought, self.carried if carried else {}):
            for sha, indexes in source.items():
                merged.setdefault(sha, set()).update(indexes)
        return tuple((sha, tuple(sorted(indexes))) for sha, indexes in merged.items() if indexes)


def _bring_in_earlier(
    store: Store,
    session: Session,
    records: Sequence[AttachmentRecord],
    resolver: Resolver,
    picker: _Picker,
    this_turn: set[str],
    budget_tokens: int,
) -> list[BroughtIn]:
    """Passages of the session's partly sent files that match the new question and are
    not in the conversation yet (:func:`~nbchat.core.passages.bring_in`)."""
    if budget_tokens <= 0 or not (picker.terms or picker.vector_source):
        return []
    seen = store.sent_chunks(session.id, from_seq=session.history_start_seq)
    candidates: list[Candidate] = []
    done: set[str] = set(this_turn)
    for record in records:
        partial = (record.kept_tokens or 0) < (record.total_tokens or 0)
        if record.forgotten or not partial or record.sha256 in done:
            continue
        done.add(record.sha256)
        item = resolve_record(record, resolver)
        if item is None:
            continue
        candidates.append(Candidate(
            item.name, item.sha256, item.text, picker.table(item), picker.ranked(item),
            seen.get(item.sha256, frozenset()),
        ))
    brought = bring_in(candidates, picker.terms, budget_tokens, picker.counter)
    for part in brought:
        picker.brought[part.sha256] = {p.chunk.index for p in part.passages}
    return brought


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
            store.set_history(
                db, session.id, start_seq=prepared.compaction.start_seq,
                carried_files=prepared.compaction.carried_files, compacted=True,
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
        for sha, indexes in prepared.sent_chunks:
            store.record_sent_chunks(db, session.id, message.id, sha, indexes)
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
    """Send the question, store it once the server has it, stream the answer, store it;
    yields deltas, prompt progress, usage, then the result.

    The order keeps nothing for a request no server received: ``backend.stream`` sends
    the request and returns once the server answered it (llama-server, OpenRouter and
    the other HTTP backends), so a connection refused raises
    :class:`~nbchat.core.errors.BackendUnreachable` here and nothing is stored. Once
    the server has the question it is stored, with its bookkeeping, in one transaction.
    Whatever ends the stream then — its end, an error, Ctrl-C in the middle of it, or
    the caller closing this iterator — the answer received so far is stored, marked
    ``partial`` (or ``error`` when nothing arrived), exactly once, and ``on_stored``
    gets its result (the only way to learn it when the iterator was closed). Ctrl-C
    never lands inside either write (:func:`~nbchat.core.interrupts.deferred_interrupts`).
    """
    started = time.perf_counter()
    settings = prepared.settings
    model = settings.resolved_model  # this turn's own, never a backend's earlier one
    received: list[str] = []
    usage: Usage | None = None
    finish: str | None = None
    error: StreamError | None = None
    session: Session | None = None  # set once the question is stored
    stored = False

    def store_answer(error: StreamError | None) -> TurnResult:
        # Ctrl-C waits for the write (and its report); here it comes too late to matter.
        with deferred_interrupts(deliver=False):
            return _store_answer(error)

    def _store_answer(error: StreamError | None) -> TurnResult:
        nonlocal stored
        assert session is not None
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

    stream: Iterator[Event] | None = None
    try:
        raise_if_interrupted()
        try:
            stream = backend.stream(
                prepared.messages,
                model=model,
                max_tokens=settings.max_tokens,
                temperature=settings.temperature,
            )
        except BackendUnreachable:
            raise  # no server has the question: nothing is stored, the caller says why
        except BackendError as exc:
            # The server refused it (a bad key, no credits...): kept, with the reason.
            error = StreamError(exc.kind, str(exc), exc.retry_after)
        raise_if_interrupted()
        with deferred_interrupts():
            session, _ = commit_user_turn(store, prepared)
        for event in stream if stream is not None else ():
            raise_if_interrupted()
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
        raise_if_interrupted()  # one swallowed on the way must not pass as a whole answer
    except BackendError as exc:
        if session is None:
            raise
        error = StreamError(exc.kind, str(exc), exc.retry_after)
    except BaseException:
        # Ctrl-C, a stop request (GeneratorExit) or a bug: keep what arrived, then go on.
        _close(stream)
        if session is not None and not stored:
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


def _repeat_note(item: Resolved, partial: bool = False) -> str:
    if partial:
        return (
            f"[{item.name}: unchanged since it was attached earlier in this conversation; "
            "parts of it are above, and the passages this question needs follow]"
        )
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
