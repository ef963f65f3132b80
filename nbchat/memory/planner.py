"""The retrieval planner: before a turn, decide whether to search past messages.

The client (:class:`nbchat.client.ChatClient`) runs these decisions: it asks
:func:`decide_recall`, searches with :func:`plan_recall`, and rebuilds the turn with the
block. It searches when

- the conversation's history was compacted, so turns were dropped from the prompt
  (only this session's dropped messages, and only hits that share words with the
  question: a weak vector match alone is not worth the tokens);
- the user refers to earlier talk ("what did we discuss yesterday?", "you said",
  "last time", ...): every session, with time words turned into a time filter;
- the user asks for it (``--recall``), or attached hits with ``%chat recall --attach``.

Messages already in the prompt are skipped. The rest become one block, under
``recall_budget`` tokens, that the layout appends to the *current* user message (never
the system message, so the prompt's prefix stays byte-stable). Each entry names its
session and date. Any failure leaves the turn as it would be without memory, plus a
notice.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nbchat.core.budget import truncate_to_tokens
from nbchat.core.errors import NbChatError
from nbchat.core.events import TokenCounter
from nbchat.core.ranking import STOPWORDS, query_terms
from nbchat.core.settings import Settings
from nbchat.core.store import Hit, SearchFilter, Session, Store
from nbchat.core.turn import PreparedTurn
from nbchat.memory.service import Memory

__all__ = [
    "TimeRange",
    "RecallDecision",
    "RecallPlan",
    "refers_to_earlier",
    "find_time_range",
    "decide_recall",
    "render_hit",
    "build_block",
    "plan_recall",
    "in_prompt_before",
    "plan_after_compaction",
    "recall_notice",
    "failure_notice",
]

MAX_HITS = 8
MIN_ENTRY_TOKENS = 48
_log = logging.getLogger("nbchat.memory")

_WEEKDAYS = [d.lower() for d in calendar.day_name]
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "few": 3,
}
_COUNT = r"(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|couple of|few)"

# Phrases that point back at earlier talk. "before" alone is too common ("sort before
# merging"), so it counts only after a verb of saying.
_REFERENCES = [
    r"\bearlier\b",
    r"\bpreviously\b",
    r"\blast time\b",
    r"\bthe other day\b",
    r"\byesterday\b",
    r"\blast (?:week|month|night|session|conversation|chat|discussion)\b",
    r"\b(?:previous|past|earlier|other|old|older) (?:session|conversation|chat|discussion)s?\b",
    r"\bwe(?:'ve| have| had)? (?:discussed|talked|spoke|covered|agreed|decided|went over)\b",
    r"\b(?:you|i) (?:said|told|mentioned|suggested|recommended|wrote|gave|showed|asked|shared|explained)\b",
    r"\b(?:say|said|tell|told|mention(?:ed)?|discuss(?:ed)?|ask(?:ed)?|talk(?:ed)? about|"
    r"write|wrote|give|gave|show(?:ed)?|share(?:d)?)\b[^.?!\n]{0,40}\bbefore\b",
    r"\bwhat did (?:i|we|you) (?:say|tell|mention|discuss|decide|agree|talk|ask|write)\b",
    r"\bremember\b",
    r"\brecall\b",
    r"\bremind me\b",
    rf"\b{_COUNT} (?:days?|weeks?|months?) ago\b",
    r"\b(?:on|last) (?:" + "|".join(_WEEKDAYS) + r")\b",
]
_REFERENCE = re.compile("|".join(f"(?:{p})" for p in _REFERENCES), re.IGNORECASE)

# Words that say *when* or *that* something was discussed, not *what*: not searched for.
_META_WORDS = frozenset(
    """
    earlier previously last time times yesterday today week weeks month months night
    session sessions conversation conversations chat chats discussion discussions discuss
    discussed talk talked talking spoke covered agreed decided went remember recall remind
    mentioned suggested recommended told wrote gave showed asked shared explained ago day
    days other previous past old older morning afternoon evening before again back
    """.split()
) | frozenset(_WEEKDAYS)


@dataclass(frozen=True)
class TimeRange:
    """A half-open time window in Unix seconds, with the words that asked for it."""

    since: float
    until: float
    label: str


@dataclass(frozen=True)
class RecallDecision:
    """Why the planner searches, and where.

    ``reason`` is ``asked``, ``reference`` or ``compaction``; ``session_id`` limits the
    search to one session; ``max_hits`` caps the hits, ``vector_only_hits`` those found
    by meaning alone; a hit found by words must share ``shared_words`` of the question's
    topic words (fewer when the question has fewer). The less the user asked for recall,
    the stricter: an unasked block costs tokens on every later turn too.
    """

    reason: str
    session_id: str | None
    time_range: TimeRange | None
    vector_only_hits: int
    max_hits: int = MAX_HITS
    shared_words: int = 1


@dataclass(frozen=True)
class RecallPlan:
    """The block to add to the question (empty for none), what is in it, and notices."""

    text: str
    hits: tuple[Hit, ...]
    decision: RecallDecision | None
    notices: tuple[str, ...] = ()


def refers_to_earlier(text: str) -> bool:
    """Does ``text`` point back at earlier talk ("you said", "yesterday", ...)?"""
    return _REFERENCE.search(text) is not None


def find_time_range(text: str, now: datetime | None = None) -> TimeRange | None:
    """The time the user points at ("yesterday", "last week", "3 days ago"), if any.

    Days are local calendar days; weeks start on Monday. The first phrase found wins.
    """
    now = now or datetime.now().astimezone()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lowered = text.lower()

    def span(start: datetime, end: datetime, label: str) -> TimeRange:
        return TimeRange(start.timestamp(), min(end, now + timedelta(seconds=1)).timestamp(), label)

    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    found: list[tuple[int, TimeRange]] = []

    def add(pattern: str, make: Callable[[re.Match[str]], TimeRange | None]) -> None:
        match = re.search(pattern, lowered)
        if match:
            made = make(match)
            if made is not None:
                found.append((match.start(), made))

    add(r"\byesterday\b", lambda m: span(today - timedelta(days=1), today, "yesterday"))
    add(r"\b(?:earlier today|today|this (?:morning|afternoon|evening))\b",
        lambda m: span(today, now + timedelta(seconds=1), m.group(0)))
    add(r"\blast night\b",
        lambda m: span(today - timedelta(hours=6), today + timedelta(hours=6), "last night"))
    add(r"\bthis week\b", lambda m: span(week_start, now + timedelta(seconds=1), "this week"))
    add(r"\blast week\b",
        lambda m: span(week_start - timedelta(days=7), week_start, "last week"))
    add(r"\bthis month\b", lambda m: span(month_start, now + timedelta(seconds=1), "this month"))
    add(r"\blast month\b",
        lambda m: span((month_start - timedelta(days=1)).replace(day=1), month_start, "last month"))

    def ago(match: re.Match[str]) -> TimeRange | None:
        raw = match.group(1)
        count = int(raw) if raw.isdigit() else _NUMBERS.get(raw, 1)
        unit = match.group(2)
        if unit.startswith("day"):
            start = today - timedelta(days=count)
            return span(start, start + timedelta(days=1), match.group(0))
        if unit.startswith("week"):
            start = week_start - timedelta(days=7 * count)
            return span(start, start + timedelta(days=7), match.group(0))
        start = today - timedelta(days=31 * count + 15)
        return span(start, today - timedelta(days=31 * count - 15), match.group(0))

    add(rf"\b{_COUNT} (day|week|month)s? ago\b", ago)

    def weekday(match: re.Match[str]) -> TimeRange:
        target = _WEEKDAYS.index(match.group(1))
        back = (today.weekday() - target) % 7 or 7
        start = today - timedelta(days=back)
        return span(start, start + timedelta(days=1), match.group(0))

    add(r"\b(?:on|last) (" + "|".join(_WEEKDAYS) + r")\b", weekday)
    if not found:
        return None
    return min(found, key=lambda pair: pair[0])[1]


def decide_recall(
    prompt: str,
    *,
    session_id: str | None,
    forced: bool = False,
    compacted: bool = False,
    now: datetime | None = None,
) -> RecallDecision | None:
    """Whether to search before this turn, and with which scope (see the module doc)."""
    if forced:
        return RecallDecision("asked", None, find_time_range(prompt, now), 3, MAX_HITS, 1)
    if refers_to_earlier(prompt):
        return RecallDecision("reference", None, find_time_range(prompt, now), 2, 6, 2)
    if compacted and session_id is not None:
        return compaction_decision(session_id)
    return None


def compaction_decision(session_id: str) -> RecallDecision:
    """Only this session's dropped turns; few hits, by words only, sharing two words."""
    return RecallDecision("compaction", session_id, None, 0, 3, 2)


def topic_query(prompt: str) -> str:
    """The prompt without the words that only say "earlier" or "when"."""
    words = [w for w in query_terms(prompt) if w not in _META_WORDS and w not in STOPWORDS]
    return " ".join(words)


def render_hit(hit: Hit, content: str | None = None) -> str:
    """One entry of the block: where and when, who, then the text."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created))
    title = hit.session_title or hit.session_id
    who = "the user" if hit.role == "user" else "the assistant"
    body = content if content is not None else hit.content.strip()
    return f'[session "{title}", {when}; {who} wrote]\n{body}'


def build_block(
    hits: Sequence[Hit], counter: TokenCounter, budget_tokens: int
) -> tuple[str, list[Hit]]:
    """The entries that fit ``budget_tokens`` (a long one is cut with a visible note).

    ``hits`` come best first, which decides what fits; the block lists them in the order
    they were said, which reads as a conversation.
    """
    entries: list[str] = []
    used_hits: list[Hit] = []
    used = 0
    separator_tokens = 1
    for hit in hits:
        entry = render_hit(hit)
        need = counter.count(entry) + separator_tokens
        room = budget_tokens - used
        if need > room:
            header_tokens = counter.count(render_hit(hit, "")) + separator_tokens
            if room - header_tokens < MIN_ENTRY_TOKENS:
                continue  # a shorter hit further down may still fit
            body = hit.content.strip()
            cut, _ = truncate_to_tokens(
                body, counter.count(body), room - header_tokens, counter
            )
            entry = render_hit(hit, cut)
            need = counter.count(entry) + separator_tokens
            if need > room:
                continue
        entries.append(entry)
        used_hits.append(hit)
        used += need
    order = sorted(range(len(used_hits)), key=lambda i: (used_hits[i].created, used_hits[i].message_id))
    return "\n\n".join(entries[i] for i in order), [used_hits[i] for i in order]


def plan_recall(
    memory: Memory,
    prompt: str,
    *,
    decision: RecallDecision | None,
    in_prompt_ids: frozenset[int],
    in_prompt_text: str,
    counter: TokenCounter,
    budget_tokens: int,
    attached_ids: Sequence[int] = (),
) -> RecallPlan:
    """Search as ``decision`` says and build the block; attached hits come first."""
    chosen: list[Hit] = []
    seen: set[str] = set()

    def take(hit: Hit) -> bool:
        key = " ".join(hit.content.split())
        if not key or key in seen or hit.message_id in in_prompt_ids:
            return False
        if hit.content.strip() in in_prompt_text:
            return False
        seen.add(key)
        chosen.append(hit)
        return True

    for hit in memory.hits(attached_ids):
        take(hit)
    if decision is not None:
        time_range = decision.time_range
        search_filter = SearchFilter(
            session_id=decision.session_id,
            since=time_range.since if time_range else None,
            until=time_range.until if time_range else None,
            exclude_message_ids=in_prompt_ids,
        )
        query = topic_query(prompt)
        terms = query.split()
        # Without hits by meaning alone, embedding the question would buy little.
        vector_query = prompt if decision.vector_only_hits else ""
        if query:
            found = memory.search(
                query, limit=MAX_HITS * 3, search_filter=search_filter, vector_query=vector_query
            )
        elif time_range is not None:
            found = memory.browse(search_filter, limit=MAX_HITS * 2)
        elif decision.reason != "compaction":
            # Nothing but "do you remember?": only the meaning of the whole prompt is left.
            found = memory.search(
                "", limit=MAX_HITS * 3, search_filter=search_filter, vector_query=prompt
            )
        else:
            found = []
        vector_only = 0
        needed = min(decision.shared_words, len(terms))
        for hit in found:
            if len(chosen) >= decision.max_hits + len(attached_ids):
                break
            if hit.lexical_rank is None and hit.vector_rank is not None:
                if vector_only >= decision.vector_only_hits:
                    continue
                if take(hit):
                    vector_only += 1
                continue
            if hit.lexical_rank is not None and _shared_words(hit.content, terms) < needed:
                continue
            take(hit)
    if not chosen:
        return RecallPlan("", (), decision)
    text, used = build_block(chosen, counter, budget_tokens)
    return RecallPlan(text, tuple(used), decision)


def _shared_words(content: str, terms: Sequence[str]) -> int:
    """How many of ``terms`` start a word of ``content`` (by their stem-ish start).

    Whole words: "plot 7" shares nothing with "0.87", and a number must match itself.
    """
    words = set(query_terms(content))
    shared = 0
    for term in terms:
        if term.isdigit():
            shared += term in words
        else:
            stem = term[: max(4, len(term) - 2)]
            shared += any(word.startswith(stem) for word in words)
    return shared


def _why(plan: RecallPlan) -> str:
    decision = plan.decision
    if decision is None:
        return "attached with `%chat recall --attach`"
    if decision.reason == "asked":
        return "as asked with --recall"
    if decision.reason == "compaction":
        return "from turns dropped when the history was compacted"
    when = f" ({decision.time_range.label})" if decision.time_range else ""
    return f"because the question refers to earlier talk{when}"


def recall_notice(plan: RecallPlan | None, recall_tokens: int) -> str:
    """The notice a turn shows about its recalled block ("" for none)."""
    if plan is not None and plan.text:
        return (
            f"Recalled {len(plan.hits)} earlier message(s) "
            f"({recall_tokens:,} tokens) {_why(plan)}."
        )
    if plan is not None and plan.decision is not None and plan.decision.reason == "asked":
        return "--recall found no earlier messages to add."
    return ""


def in_prompt_before(
    store: Store, session: Session | None, no_history: bool
) -> tuple[frozenset[int], str]:
    """The ids and text of what the prompt will replay from this session."""
    if session is None or no_history:
        return frozenset(), ""
    kept = store.messages(session.id, from_seq=session.history_start_seq)
    text = "\n".join([session.carried_files, *(m.rendered for m in kept)])
    return frozenset(m.id for m in kept), text


def plan_after_compaction(
    memory: Memory,
    prompt: str,
    prepared: PreparedTurn,
    counter: TokenCounter,
    settings: Settings,
) -> RecallPlan:
    """This turn's compaction dropped turns: search them for what the question needs."""
    session = prepared.session
    assert session is not None
    start_seq = prepared.compaction.start_seq if prepared.compaction else session.history_start_seq
    kept = memory.store.messages(session.id, from_seq=start_seq)
    text = "\n".join(m["content"] for m in prepared.messages)
    decision = compaction_decision(session.id)
    return plan_recall(
        memory, prompt, decision=decision, in_prompt_ids=frozenset(m.id for m in kept),
        in_prompt_text=text, counter=counter, budget_tokens=settings.recall_budget,
    )


def failure_notice(exc: Exception) -> str:
    """The notice of a recall that failed (the turn goes on without it)."""
    _log.debug("recall failed", exc_info=exc)
    reason = str(exc) if isinstance(exc, NbChatError) else "the search of past messages failed"
    return f"Recall was skipped ({reason}); this turn has the plain conversation."
