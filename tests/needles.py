"""A long document with facts planted at known places, for large-document tests and benchmarks.

The filler is report-like prose from a fixed vocabulary; each fact uses a proper name
that appears nowhere else in the document (and a number), so whether a fact reached a
prompt is a plain substring check on its answer, and a question about it names that
word the way a user would. The same seed gives the same document byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Fact", "NeedleDocument", "needle_document", "FACTS"]

_SUBJECTS = (
    "The survey team", "The regional office", "Our field staff", "The audit committee",
    "The maintenance crew", "The planning group", "The finance desk", "The logistics unit",
    "The operations board", "The quality panel", "The data office", "The review team",
)
_VERBS = (
    "reviewed", "updated", "recorded", "inspected", "summarised", "compared", "scheduled",
    "documented", "measured", "revised", "checked", "approved",
)
_OBJECTS = (
    "the quarterly figures", "the storage records", "the supplier contracts",
    "the inspection reports", "the staffing plan", "the delivery routes", "the budget lines",
    "the training material", "the equipment list", "the safety procedures",
    "the weather logs", "the customer letters",
)
_TAILS = (
    "before the deadline", "after the spring visit", "with no major changes",
    "in line with the earlier plan", "for the second time this year", "as requested",
    "at the end of the month", "with two minor corrections", "during the week",
    "ahead of the board meeting", "without further comment", "in the shared folder",
)


@dataclass(frozen=True)
class Fact:
    """One planted fact: the sentence, a question a user would ask, and its answer."""

    sentence: str
    question: str
    answer: str
    keyword: str


#: Ten facts; each keyword occurs only in its own sentence.
FACTS: tuple[Fact, ...] = (
    Fact("The access code for the north gate of the Halvorsen depot is 7291.",
         "What is the access code for the north gate of the Halvorsen depot?", "7291", "Halvorsen"),
    Fact("The Brightwater reservoir holds 18,450 cubic metres of water when full.",
         "How much water does the Brightwater reservoir hold when full?", "18,450", "Brightwater"),
    Fact("The Quillon pump station was commissioned in the year 1987.",
         "In which year was the Quillon pump station commissioned?", "1987", "Quillon"),
    Fact("The spare keys for the Marrowgate archive are kept in locker 63.",
         "In which locker are the spare keys for the Marrowgate archive kept?", "63", "Marrowgate"),
    Fact("The Tessaly bridge inspection found 14 cracked bolts.",
         "How many cracked bolts did the Tessaly bridge inspection find?", "14", "Tessaly"),
    Fact("The Corvane laboratory keeps its freezer at minus 82 degrees.",
         "At what temperature does the Corvane laboratory keep its freezer?", "82", "Corvane"),
    Fact("The Pellridge contract is worth 3.6 million euros.",
         "How much is the Pellridge contract worth?", "3.6 million", "Pellridge"),
    Fact("The Oxhollow warehouse has 212 loading bays.",
         "How many loading bays does the Oxhollow warehouse have?", "212", "Oxhollow"),
    Fact("The Fennick shuttle leaves the depot every 35 minutes.",
         "How often does the Fennick shuttle leave the depot?", "35 minutes", "Fennick"),
    Fact("The Sorrowby tunnel is 4,870 metres long.",
         "How long is the Sorrowby tunnel?", "4,870", "Sorrowby"),
)


@dataclass(frozen=True)
class NeedleDocument:
    """The document's text and its facts with where each starts (a fraction of the text)."""

    text: str
    facts: tuple[Fact, ...]
    positions: tuple[float, ...]


def needle_document(target_chars: int = 240_000, *, seed: int = 17) -> NeedleDocument:
    """About ``target_chars`` of sectioned prose with the ten :data:`FACTS` spread from
    its first paragraphs to its last (about 60,000 tokens at the default size).

    Fact ``i`` sits at roughly ``(i + 0.5) / 10`` of the text, inside an ordinary
    paragraph of its section; sections are headed ``Section N`` on their own line.
    """
    rng = random.Random(seed)
    paragraphs: list[str] = []
    size = 0
    section = 0
    while size < target_chars:
        if len(paragraphs) % 12 == 0:
            section += 1
            heading = f"Section {section}: notes from week {section}"
            paragraphs.append(heading)
            size += len(heading) + 2
        sentences = [
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_TAILS)}, item {rng.randint(2, 980)}."
            for _ in range(rng.randint(4, 7))
        ]
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    body_indexes = [i for i, p in enumerate(paragraphs) if not p.startswith("Section ")]
    chosen: list[int] = []
    for index in range(len(FACTS)):
        at = body_indexes[min(len(body_indexes) - 1, int((index + 0.5) / len(FACTS) * len(body_indexes)))]
        if index == 0:
            at = body_indexes[1]  # the first fact near the very start
        chosen.append(at)
    for fact, at in zip(FACTS, chosen):
        sentences = paragraphs[at].split(". ")
        middle = len(sentences) // 2
        paragraphs[at] = ". ".join([*sentences[:middle], fact.sentence.rstrip("."), *sentences[middle:]])
    text = "\n\n".join(paragraphs) + "\n"
    positions = tuple(text.index(fact.sentence.rstrip(".")) / len(text) for fact in FACTS)
    return NeedleDocument(text, FACTS, positions)
