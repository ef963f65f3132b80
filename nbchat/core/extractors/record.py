"""The result of extracting one file."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Extracted", "KINDS"]

#: Every value :attr:`Extracted.kind` can take.
KINDS = (
    "pdf",
    "docx",
    "xlsx",
    "pptx",
    "csv",
    "tsv",
    "json",
    "html",
    "markdown",
    "text",
    "code",
    "ipynb",
)


@dataclass(frozen=True)
class Extracted:
    """The text of one file, the format it was read as, and what was left out.

    ``notes`` say what the text does not carry (images, rows past a cap, bytes that
    could not be decoded), so that nothing is dropped without the user being told.
    """

    text: str
    kind: str
    notes: tuple[str, ...] = ()
