"""The result of extracting one file."""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import FORMATS

__all__ = ["Extracted", "Section", "KINDS", "UNITS", "page_marker"]

#: Every value :attr:`Extracted.kind` can take.
KINDS = tuple(f.kind for f in FORMATS)


#: Every value :attr:`Section.unit` can take.
UNITS = ("page", "sheet", "slide", "cell")


def page_marker(number: int) -> str:
    """The line a PDF page's text starts with in the extraction: ``--- page N ---``."""
    return f"--- page {number} ---"


@dataclass(frozen=True)
class Section:
    """Where one stretch of an extracted text comes from.

    ``start`` and ``end`` are offsets into :attr:`Extracted.text` (``text[start:end]``
    is the section's text, exactly as sent); ``unit`` is one of :data:`UNITS`,
    ``number`` counts from 1 in the file's own order, and ``label`` names it when the
    file does (a sheet's name), else it is empty.
    """

    unit: str
    number: int
    start: int
    end: int
    label: str = ""


@dataclass(frozen=True)
class Extracted:
    """The text of one file, the format it was read as, and what was left out.

    ``notes`` say what the text does not carry (images, rows past a cap, bytes that
    could not be decoded), so that nothing is dropped without the user being told.
    ``sections`` locate the pages, sheets, slides or cells inside ``text`` (empty for
    formats without such units: the text is then one piece); they take no part in
    equality, which is about what the model is sent.
    """

    text: str
    kind: str
    notes: tuple[str, ...] = ()
    # Where the units sit, not what is sent: two extractions with the same text, kind
    # and notes are equal.
    sections: tuple[Section, ...] = field(default=(), compare=False)

    def section_text(self, section: Section) -> str:
        return self.text[section.start : section.end]


def join_sections(
    parts: list[tuple[str, int, str, str]], separator: str = "\n\n"
) -> tuple[str, tuple[Section, ...]]:
    """Join ``(unit, number, label, text)`` parts with ``separator``; locate each one.

    The joined text is exactly ``separator.join(texts)``, so an extractor that built its
    text that way keeps it byte for byte.
    """
    sections: list[Section] = []
    pieces: list[str] = []
    offset = 0
    for index, (unit, number, label, text) in enumerate(parts):
        if index:
            offset += len(separator)
        sections.append(Section(unit, number, offset, offset + len(text), label))
        pieces.append(text)
        offset += len(text)
    return separator.join(pieces), tuple(sections)
