"""Finding ``[Attached: name.ext]`` and ``@name.ext`` references in the user's own text.

They are looked for only in what the user typed, before any attachment is injected, so
``@pytest.fixture`` or ``@media`` inside an attached file is never touched. ``@name``
counts only when it ends in a file extension nbchat knows, and an email address
(``a@b.com``: a word character right before the ``@``) never counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Reference", "find_references", "KNOWN_EXTENSIONS"]

KNOWN_EXTENSIONS = frozenset(
    """
    pdf docx xlsx xlsm pptx csv tsv json jsonl ndjson html htm md markdown txt text rst
    tex log ipynb py pyi r jl sql js mjs ts tsx jsx c h cc cpp hpp java kt go rs rb php
    sh bash zsh ps1 yaml yml toml ini cfg conf xml svg css scss
    """.split()
)

_BRACKETED = re.compile(r"\[Attached:\s*([^\]\n]+?)\s*\]")
_AT = re.compile(r"(?<![\w@./\\-])@([\w][\w\-.]*?\.([A-Za-z0-9]{1,10}))(?![\w-])")


@dataclass(frozen=True)
class Reference:
    """One reference: where it stands in the text and the file name it names."""

    start: int
    end: int
    name: str


def find_references(text: str) -> list[Reference]:
    """All references in ``text``, in order, not overlapping."""
    found: list[Reference] = []
    for match in _BRACKETED.finditer(text):
        found.append(Reference(match.start(), match.end(), match.group(1)))
    for match in _AT.finditer(text):
        name, extension = match.group(1), match.group(2)
        if extension.lower() not in KNOWN_EXTENSIONS:
            continue
        if any(r.start <= match.start() < r.end for r in found):
            continue
        found.append(Reference(match.start(), match.end(), name))
    return sorted(found, key=lambda r: r.start)
