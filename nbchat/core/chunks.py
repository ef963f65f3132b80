"""An extracted text cut into labelled chunks of about 300 tokens, for passage selection.

A chunk never crosses a :class:`~nbchat.core.extractors.record.Section` (a page, sheet,
slide or cell) and is cut at paragraph or line boundaries; a paragraph longer than a
chunk is split at sentence, then word boundaries. Each chunk carries a label the user can
check against the file ("page 47", "slide 3", "cell 5", "sheet Sales, rows 200-260",
"lines 120-168" for text-like files). Chunking is a pure function of (text, sections),
so it belongs to the extractor version's output: the same extraction always gives the
same chunks, and their index in the store is keyed by (sha256, extractor version).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from nbchat.core.extractors.record import Section

__all__ = ["Chunk", "CHUNK_CHARS", "chunk_text", "describe_chunks"]

#: About 300 tokens of prose (about four characters a token).
CHUNK_CHARS = 1200

# Where a too-long stretch is cut, most natural first.
_SEPARATORS = ("\n\n", "\n", ". ", " ")

_PLURAL = {"page": "pages", "slide": "slides", "cell": "cells", "sheet": "sheets"}


@dataclass(frozen=True)
class Chunk:
    """``text[start:end]`` of an extraction, labelled by where it comes from.

    ``unit`` is ``page``, ``slide``, ``cell``, ``sheet`` or ``line``; ``first`` and
    ``last`` are the unit's number (a page, slide, cell), or the first and last line
    (text) or table row (a sheet's rows, with ``sheet`` naming the sheet).
    """

    index: int
    start: int
    end: int
    label: str
    unit: str = "line"
    first: int = 0
    last: int = 0
    sheet: str = ""


def chunk_text(
    text: str, sections: Sequence[Section] = (), limit_chars: int = CHUNK_CHARS
) -> tuple[Chunk, ...]:
    """The chunks of ``text``, in order; ``sections`` (if any) bound them."""
    regions: list[tuple[int, int, Section | None]] = [(0, len(text), None)]
    if sections:
        regions = [(s.start, s.end, s) for s in sections]
    line_starts = _line_starts(text)
    chunks: list[Chunk] = []
    for start, end, section in regions:
        for span_start, span_end in _spans(text, start, end, limit_chars):
            chunks.append(
                _labelled(text, len(chunks), span_start, span_end, section, line_starts)
            )
    return tuple(chunks)


def describe_chunks(chosen: Sequence[Chunk], every: Sequence[Chunk], text: str) -> str:
    """Which parts ``chosen`` covers, out of the file: "pages 1-2, 47 of 117",
    "lines 1-40, 1,200-1,260 of 6,310", "sheet Sales rows 2-40 of 2 sheets"."""
    if not chosen:
        return "nothing"
    unit = chosen[0].unit
    if unit == "line":
        total = text.count("\n") + (0 if text.endswith("\n") else 1)
        spans = _merged([(run[0].first, run[-1].last) for run in _consecutive(chosen)])
        name = "line" if len(spans) == 1 and spans[0][0] == spans[0][1] else "lines"
        return f"{name} {_ranges(spans)} of {total:,}"
    if unit == "sheet":
        sheets = list(dict.fromkeys(c.sheet for c in every))
        by_sheet: dict[str, list[tuple[int, int]]] = {}
        for chunk in chosen:
            by_sheet.setdefault(chunk.sheet, []).append((chunk.first, chunk.last))
        parts = []
        for sheet, spans in by_sheet.items():
            rows = [(a, b) for a, b in spans if a]
            parts.append(f"sheet {sheet}" + (f" rows {_ranges(_merged(rows))}" if rows else ""))
        return f"{'; '.join(parts)} of {len(sheets)} sheet{'s' if len(sheets) != 1 else ''}"
    numbers = sorted({c.first for c in chosen})
    total = max(c.first for c in every)
    name = _PLURAL.get(unit, unit) if len(numbers) > 1 else unit
    return f"{name} {_ranges(_merged([(n, n) for n in numbers]))} of {total:,}"


def _spans(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Consecutive spans covering ``text[start:end]``, each at most ``limit`` chars when
    natural cuts allow, greedily merged up to ``limit``; whitespace-only spans dropped."""
    pieces = _pieces(text, start, end, limit, _SEPARATORS)
    merged: list[tuple[int, int]] = []
    for piece_start, piece_end in pieces:
        if merged and piece_end - merged[-1][0] <= limit:
            merged[-1] = (merged[-1][0], piece_end)
        else:
            merged.append((piece_start, piece_end))
    spans = []
    for span_start, span_end in merged:
        while span_end > span_start and text[span_end - 1].isspace():
            span_end -= 1
        while span_start < span_end and text[span_start].isspace():
            span_start += 1
        if span_end > span_start:
            spans.append((span_start, span_end))
    return spans


def _pieces(
    text: str, start: int, end: int, limit: int, separators: Sequence[str]
) -> list[tuple[int, int]]:
    if end - start <= limit:
        return [(start, end)]
    if not separators:
        return [(at, min(at + limit, end)) for at in range(start, end, limit)]
    separator = separators[0]
    pieces: list[tuple[int, int]] = []
    at = start
    while at < end:
        found = text.find(separator, at, end)
        stop = end if found < 0 else found + len(separator)
        if stop - at > limit:
            pieces += _pieces(text, at, stop, limit, separators[1:])
        else:
            pieces.append((at, stop))
        at = stop
    return pieces


def _line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _line_of(offset: int, line_starts: list[int]) -> int:
    """1-based line number of the character at ``offset``."""
    return bisect.bisect_right(line_starts, offset)


def _labelled(
    text: str, index: int, start: int, end: int, section: Section | None, line_starts: list[int]
) -> Chunk:
    if section is None:
        first, last = _line_of(start, line_starts), _line_of(end - 1, line_starts)
        label = f"line {first:,}" if first == last else f"lines {first:,}-{last:,}"
        return Chunk(index, start, end, label, "line", first, last)
    if section.unit == "sheet":
        name = section.label or str(section.number)
        first, last = _table_rows(text, section.start, start, end)
        rows = "" if not first else (f", row {first:,}" if first == last else f", rows {first:,}-{last:,}")
        return Chunk(index, start, end, f"sheet {name}{rows}", "sheet", first, last, name)
    return Chunk(
        index, start, end, f"{section.unit} {section.number}", section.unit,
        section.number, section.number,
    )


def _table_rows(text: str, sheet_start: int, start: int, end: int) -> tuple[int, int]:
    """The sheet's table rows (header = row 1, separator lines not counted) that
    ``text[start:end]`` holds; (0, 0) when it holds none."""
    before = sum(1 for line in text[sheet_start:start].split("\n") if _is_row(line))
    inside = [line for line in text[start:end].split("\n") if _is_row(line)]
    if not inside:
        return 0, 0
    return before + 1, before + len(inside)


def _is_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("|") and not set(stripped) <= set("|-: ")


def _consecutive(chosen: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks in runs of neighbours (consecutive indexes)."""
    runs: list[list[Chunk]] = []
    for chunk in sorted(chosen, key=lambda c: c.index):
        if runs and chunk.index == runs[-1][-1].index + 1:
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


def _merged(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted, with touching or overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _ranges(spans: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{a:,}" if a == b else f"{a:,}-{b:,}" for a, b in spans)
