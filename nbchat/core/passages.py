"""The passages of a large file that a question needs, when the whole file does not fit.

A file over its grant is sent as its head (the first chunks, about
:data:`HEAD_SHARE` of the grant: title, first page) plus the chunks that rank highest
for the question, then its end (the last chunk, up to :data:`TAIL_SHARE` of the grant:
a conclusion, a notebook's last cell, a log's last lines), in document order, each run of
chunks headed by its label ("[page 47]"), gaps shown as "[...]", and a closing note that
says what was included::

    report.pdf: pages 1-2, 47, 88 of 117 included (~5,900 of ~61,000 tokens);
    ask about other parts and they will be brought in

On later turns, :func:`bring_in` picks the chunks of such files that match the new
question and are not yet in the conversation; the turn puts them in its own message as
"From report.pdf, page 88:" blocks, so earlier messages never change.

Ranking: the store's chunk index (FTS5 BM25 on SQLite, ``ts_rank`` on PostgreSQL) when
the file was indexed by an earlier turn, else the same words ranked here by BM25 (a
file seen for the first time is indexed when its turn is stored). When the memory's
embeddings server is on, the chunks' vectors (made in the background) rank them too, and
the two rankings are fused by reciprocal rank (:func:`nbchat.core.ranking.fuse`); a chunk
found by its vector alone must reach the model's cosine floor.

Which chunk holds which word is read from the file's table
(:class:`~nbchat.core.chunk_words.ChunkWords`), split once per kernel, never from its
text again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nbchat.core.chunk_words import ChunkWords, ChunkWordsCache
from nbchat.core.chunks import Chunk, describe_chunks
from nbchat.core.events import TokenCounter
from nbchat.core.extractors.record import page_marker
from nbchat.core.ranking import fuse
from nbchat.core.store import AttachmentRecord, Store

__all__ = [
    "HEAD_SHARE",
    "TAIL_SHARE",
    "Passage",
    "Selection",
    "Candidate",
    "BroughtIn",
    "QueryVector",
    "Ranking",
    "rank_chunks",
    "informative_terms",
    "select_passages",
    "describe_passages",
    "bring_in",
    "seen_parts",
]

#: The share of a file's grant that goes to its head (the rest to the ranked passages).
HEAD_SHARE = 0.15
#: The share of a file's grant that its end may take, after the ranked passages (a
#: report's conclusion, a notebook's last cell, a log's last lines).
TAIL_SHARE = 0.10
#: A query word held by more than this share of a file's chunks says nothing about which
#: chunk to send ("ist", "ein" in a German text; "report" in a report): it makes no chunk
#: relevant on its own. Applied to files of at least COMMON_MIN_CHUNKS chunks.
COMMON_SHARE = 0.5
COMMON_MIN_CHUNKS = 8
#: Chunks asked of a ranking: far more than a grant of an 8k-65k window can hold.
RANK_LIMIT = 200
GAP = "[...]"
#: A later turn brings in a chunk only if it holds at least this share of the query words
#: that the best-matching chunk holds (scale-free, unlike BM25 or fused scores).
RELATIVE_FLOOR = 0.5
# Tokens kept aside for the closing note and a join's rounding.
_NOTE_TOKENS = 60


@dataclass(frozen=True)
class QueryVector:
    """The question's embedding, the model that made it, and that model's cosine floor."""

    vector: Sequence[float]
    model: str
    cosine_floor: float


@dataclass(frozen=True)
class Ranking:
    """A file's chunks ranked for a question: (chunk index, score), best first, and the
    cosine of the chunks that the vectors found at or above the floor."""

    order: tuple[tuple[int, float], ...]
    similar: dict[int, float]


@dataclass(frozen=True)
class Passage:
    """One chunk chosen, and why: ``head``, or ``matched: word, word``."""

    chunk: Chunk
    why: str

    def describe(self) -> str:
        return f"{self.chunk.label} ({self.why})"


def describe_passages(passages: Sequence[Passage]) -> tuple[str, ...]:
    """One line per run of neighbouring passages: its label and why it was chosen."""
    lines: list[str] = []
    by_index = {p.chunk.index: p for p in passages}
    for run in _runs([p.chunk for p in passages]):
        whys = [part for c in run for part in by_index[c.index].why.split("; ")]
        matched = list(dict.fromkeys(
            word for why in whys if why.startswith("matched: ")
            for word in why.removeprefix("matched: ").split(", ")
        ))
        similar = [why for why in whys if why.startswith("similar: ")]
        reasons = (["head"] if "head" in whys else []) + (["end"] if "end" in whys else []) + (
            ["matched: " + ", ".join(matched)] if matched else []) + similar[:1]
        lines.append(f"{_run_label(run)} ({'; '.join(reasons)})")
    return tuple(lines)


@dataclass(frozen=True)
class Selection:
    """A file's passages as sent (``text`` ends with the note) and their tokens."""

    text: str
    passages: tuple[Passage, ...]
    kept_tokens: int
    note: str


@dataclass(frozen=True)
class Candidate:
    """An earlier file sent in part, with its chunks ranked for the new question."""

    name: str
    sha256: str
    text: str
    table: ChunkWords
    ranking: Ranking
    seen: frozenset[int]


@dataclass(frozen=True)
class BroughtIn:
    """The passages of one earlier file that a later turn brings in."""

    name: str
    sha256: str
    blocks: tuple[str, ...]
    passages: tuple[Passage, ...]
    tokens: int


def rank_chunks(
    store: Store | None,
    sha256: str,
    version: str,
    table: ChunkWords,
    terms: Sequence[str],
    query_vector: QueryVector | None = None,
) -> Ranking:
    """The chunks holding any of ``terms`` (and, with a query vector, those whose
    vectors are near it), best first."""
    if not table.chunks:
        return Ranking((), {})
    lexical: list[tuple[int, float]] = []
    if terms and store is not None and store.has_chunks(sha256, version):
        lexical = store.rank_chunks(sha256, version, terms, RANK_LIMIT)
    elif terms:
        lexical = _bm25(table, terms)[:RANK_LIMIT]
    nearest: list[tuple[int, float]] = []
    if query_vector is not None and store is not None:
        nearest = store.rank_chunk_vectors(
            sha256, version, query_vector.model, query_vector.vector, RANK_LIMIT
        )
    if query_vector is None or not nearest:
        return Ranking(tuple(lexical), {})
    floor = query_vector.cosine_floor
    by_words = {index for index, _ in lexical}
    kept = [(i, c) for i, c in nearest if c >= floor or i in by_words]
    similar = {i: c for i, c in kept if c >= floor}
    order = tuple((f.message_id, f.score) for f in fuse(lexical, kept))
    return Ranking(order, similar)


def informative_terms(table: ChunkWords, terms: Sequence[str]) -> list[str]:
    """``terms`` without the ones most of the file's chunks hold (see :data:`COMMON_SHARE`).

    Language-neutral where a stopword list is not: the file itself says which words are
    too common in it to choose a passage by."""
    count = len(table.chunks)
    if count < COMMON_MIN_CHUNKS or not terms:
        return list(terms)
    holding = Counter(term for index in range(count) for term in table.matched(index, terms))
    return [t for t in terms if holding[t] <= COMMON_SHARE * count]


def select_passages(
    name: str,
    text: str,
    table: ChunkWords,
    ranking: Ranking,
    terms: Sequence[str],
    *,
    grant_tokens: int,
    total_tokens: int,
    counter: TokenCounter,
    exclude: frozenset[int] = frozenset(),
) -> Selection:
    """Head + best-ranked chunks (none of ``exclude``) within ``grant_tokens``, in order."""
    chunks = table.chunks
    per_char = total_tokens / max(1, len(text))
    terms = informative_terms(table, terms)

    def cost(chunk: Chunk) -> int:
        return int((chunk.end - chunk.start) * per_char) + 4  # + its label line or a gap

    room = grant_tokens - _NOTE_TOKENS
    chosen: dict[int, str] = {}
    used = 0
    for chunk in chunks:  # the head: at least the first chunk
        if used >= HEAD_SHARE * room or used + cost(chunk) > room:
            break
        chosen[chunk.index] = "head"
        used += cost(chunk)
    order: list[int] = []  # the ranked ones, best first (dropped last-first on overflow)
    for index, _ in ranking.order:
        if index in chosen or index in exclude or index >= len(chunks):
            continue
        chunk = chunks[index]
        why = _why(table, index, terms, ranking.similar.get(index))
        if not why or used + cost(chunk) > room:
            continue
        chosen[index] = why
        order.append(index)
        used += cost(chunk)
    tail: list[int] = []  # the end (a conclusion, a notebook's last cell, a log's last
    tail_used = 0  # lines): the last chunk when it fits, more up to TAIL_SHARE of the room
    for chunk in reversed(chunks):
        if chunk.index in chosen or chunk.index in exclude or used + cost(chunk) > room:
            break
        if tail and tail_used + cost(chunk) > TAIL_SHARE * room:
            break
        chosen[chunk.index] = "end"
        tail.append(chunk.index)
        used += cost(chunk)
        tail_used += cost(chunk)
    fill: list[int] = []
    for chunk in chunks:  # room left: the text that follows the head, in order
        if chunk.index in chosen or chunk.index in exclude:
            continue
        if used + cost(chunk) > room:
            break
        chosen[chunk.index] = "head"
        fill.append(chunk.index)
        used += cost(chunk)
    while True:
        passages = tuple(Passage(chunks[i], chosen[i]) for i in sorted(chosen))
        body = render_passages(text, [p.chunk for p in passages], len(chunks))
        kept = counter.count(body) if body else 0
        note = (
            f"{name}: {describe_chunks([p.chunk for p in passages], chunks, text)} included "
            f"(~{kept:,} of ~{total_tokens:,} tokens); ask about other parts and they "
            "will be brought in"
        )
        rendered = f"{body}\n[{note}]" if body else f"[{note}]"
        used_tokens = counter.count(rendered)
        if used_tokens <= grant_tokens or not chosen:
            return Selection(rendered, passages, used_tokens, note)
        # Over (the estimate was low): the filler goes first, then the worst-ranked.
        victim = (fill.pop() if fill else tail.pop() if tail else order.pop() if order
                  else max(chosen))
        del chosen[victim]


def render_passages(text: str, chosen: Sequence[Chunk], chunk_count: int) -> str:
    """Runs of consecutive chunks, each headed by its label, gaps marked "[...]"."""
    pieces: list[str] = []
    for run in _runs(chosen):
        if run[0].index > 0:
            pieces.append(GAP)
        pieces.append(f"[{_run_label(run)}]\n{_run_text(text, run)}")
    if chosen and chosen[-1].index < chunk_count - 1:
        pieces.append(GAP)
    return "\n".join(pieces)


def bring_in(
    candidates: Sequence[Candidate],
    terms: Sequence[str],
    budget_tokens: int,
    counter: TokenCounter,
) -> list[BroughtIn]:
    """Chunks of earlier files, not yet seen, that match ``terms``, within the budget.

    The relevance floor: a chunk must hold at least one query word as a whole word that
    most of its file does not hold (:func:`informative_terms`), and at least
    :data:`RELATIVE_FLOOR` as many of them as its file's best chunk (a chunk that only
    shares a common word with the question stays out). The files take turns (each one's
    best, then each one's second best...), as their scores are not comparable; each
    file's passages are then rendered in document order.
    """
    queues: list[list[tuple[int, str]]] = []
    for item in candidates:
        item_terms = informative_terms(item.table, terms)
        found: dict[int, list[str]] = {}
        for index, _ in item.ranking.order:
            if index < len(item.table.chunks):
                found[index] = item.table.matched(index, item_terms)
        most = max((len(words_found) for words_found in found.values()), default=0)
        queue = []
        for index, _ in item.ranking.order:
            if index in item.seen or index not in found:
                continue
            similar = item.ranking.similar.get(index)
            enough = bool(found[index]) and len(found[index]) >= RELATIVE_FLOOR * most
            if enough or similar is not None:
                why = _reason(found[index] if enough else (), similar)
                queue.append((index, why))
        queues.append(queue)
    chosen: list[dict[int, str]] = [{} for _ in candidates]
    used = 0
    depth = 0
    while any(depth < len(q) for q in queues):
        for number, (item, queue) in enumerate(zip(candidates, queues)):
            if depth >= len(queue):
                continue
            index, why = queue[depth]
            chunk = item.table.chunks[index]
            need = counter.count(item.text[chunk.start : chunk.end]) + 12  # + its heading
            if used + need <= budget_tokens:
                chosen[number][index] = why
                used += need
        depth += 1
    brought: list[BroughtIn] = []
    for item, picks in zip(candidates, chosen):
        if not picks:
            continue
        ordered = [item.table.chunks[i] for i in sorted(picks)]
        blocks = tuple(
            f"From {item.name}, {_run_label(run)}:\n{_run_text(item.text, run)}"
            for run in _runs(ordered)
        )
        passages = tuple(Passage(c, picks[c.index]) for c in ordered)
        tokens = sum(counter.count(block) for block in blocks)
        brought.append(BroughtIn(item.name, item.sha256, blocks, passages, tokens))
    return brought


def seen_parts(
    store: Store, session_id: str, records: Sequence[AttachmentRecord], tables: ChunkWordsCache
) -> dict[str, str]:
    """Per content sha256 of a partly sent file, how much of it the conversation has
    seen: "pages 1-2, 47 of 117 seen, ~5,900 of ~61,000 tokens" (for ``%chat files``)."""
    from nbchat.core.attachments import Resolver
    from nbchat.core.compaction import resolve_record
    from nbchat.core.extract import EXTRACTOR_VERSION

    sent = store.sent_chunks(session_id)
    resolver = Resolver(store)
    seen: dict[str, str] = {}
    for record in records:
        indexes = sent.get(record.sha256)
        if not indexes or record.sha256 in seen:
            continue
        item = resolve_record(record, resolver)
        if item is None:
            continue
        chunks = tables.table(item.sha256, EXTRACTOR_VERSION, item.text, item.sections).chunks
        chosen = [chunks[i] for i in sorted(indexes) if i < len(chunks)]
        total = record.total_tokens or 0
        share = sum(c.end - c.start for c in chosen) / max(1, len(item.text))
        seen[record.sha256] = (
            f"{describe_chunks(chosen, chunks, item.text)} seen, "
            f"~{int(total * share):,} of ~{total:,} tokens"
        )
    return seen


def _why(table: ChunkWords, index: int, terms: Sequence[str], similar: float | None) -> str:
    """Why ranked chunk ``index`` is relevant ("matched: a, b", "similar: cosine 0.93"),
    or ""."""
    return _reason(table.matched(index, terms) if terms else [], similar)


def _reason(found: Sequence[str], similar: float | None) -> str:
    """The words a chunk matched and its cosine, as :func:`_why` words them."""
    reasons = []
    if found:
        reasons.append("matched: " + ", ".join(found))
    if similar is not None:
        reasons.append(f"similar: cosine {similar:.2f}")
    return "; ".join(reasons)


def _runs(chosen: Sequence[Chunk]) -> list[list[Chunk]]:
    runs: list[list[Chunk]] = []
    for chunk in chosen:
        if runs and chunk.index == runs[-1][-1].index + 1 and _same_place(runs[-1][-1], chunk):
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


def _same_place(a: Chunk, b: Chunk) -> bool:
    """Whether two neighbouring chunks share one label heading (same page, same sheet...)."""
    if a.unit != b.unit:
        return False
    if a.unit in ("line", "sheet"):
        return a.sheet == b.sheet
    return a.first == b.first


def _run_label(run: Sequence[Chunk]) -> str:
    first, last = run[0], run[-1]
    if first.unit == "line":
        a, b = first.first, last.last
        return f"line {a:,}" if a == b else f"lines {a:,}-{b:,}"
    if first.unit == "sheet":
        rows = [c for c in run if c.first]
        if not rows:
            return f"sheet {first.sheet}"
        a, b = rows[0].first, rows[-1].last
        return f"sheet {first.sheet}, " + (f"row {a:,}" if a == b else f"rows {a:,}-{b:,}")
    return first.label


def _run_text(text: str, run: Sequence[Chunk]) -> str:
    """The run's text, without a PDF page's own ``--- page N ---`` line: the run's label
    ("[page N]", "From report.pdf, page N:") already says where it comes from."""
    body = text[run[0].start : run[-1].end]
    if run[0].unit == "page":
        return body.removeprefix(page_marker(run[0].first) + "\n")
    return body


def _bm25(table: ChunkWords, terms: Sequence[str]) -> list[tuple[int, float]]:
    """BM25 (k1 1.2, b 0.75, as FTS5) of each chunk holding a term; best first."""
    bags, lengths = table.bags, table.lengths
    average = sum(lengths) / max(1, len(lengths))
    count = len(table.chunks)
    scores: dict[int, float] = {}
    for term in terms:
        holding = [i for i, bag in enumerate(bags) if bag.get(term)]
        if not holding:
            continue
        idf = max(1e-6, math.log((count - len(holding) + 0.5) / (len(holding) + 0.5)))
        for i in holding:
            tf = bags[i][term]
            norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[i] / max(1.0, average)))
            scores[i] = scores.get(i, 0.0) + idf * norm
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
