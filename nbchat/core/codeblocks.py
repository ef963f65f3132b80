"""Fenced code blocks of an answer, for putting an answer's code into the notebook.

The rules are CommonMark's: a fence is three or more backticks or tildes indented by at
most three spaces; it closes on a line of the same character, at least as long, with
nothing else on it; a fence never closed runs to the end of the answer. The text of a
block is the lines between its fences (the opening fence's indentation removed from
each), without a final newline: exactly what a reader would copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbchat.core.errors import NbChatError

__all__ = ["CodeBlock", "extract_code_blocks", "select_code"]

_OPENING = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its info string's first word (``python``, or ``""``) and text."""

    language: str
    code: str


def extract_code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block of ``markdown``, in order (indented blocks are not code
    an answer means to be run, and are left out)."""
    blocks: list[CodeBlock] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3)
        if fence[0] == "`" and "`" in info:
            continue  # an inline code span such as ```x```, not a fence
        body: list[str] = []
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(_dedent(lines[index], indent))
            index += 1
        index += 1  # the closing fence (or the end of the answer)
        words = info.split()
        blocks.append(CodeBlock(words[0] if words else "", "\n".join(body)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and not stripped[run:].strip()


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent):]


def select_code(answer: str, number: int | None = None, *, join_all: bool = False) -> str:
    """The ``number``-th code block of ``answer`` (1-based; the last when ``None``), or
    every block joined by a blank line when ``join_all``.

    Raises :class:`NbChatError` naming what is missing: no code block at all, or a
    number out of range (with the range there is).
    """
    blocks = extract_code_blocks(answer)
    if not blocks:
        raise NbChatError(
            "The last answer has no code block (no ``` fence): there is no code to insert."
        )
    if join_all:
        return "\n\n".join(block.code for block in blocks)
    if number is None:
        return blocks[-1].code
    if not 1 <= number <= len(blocks):
        count = "1 code block" if len(blocks) == 1 else f"{len(blocks)} code blocks"
        raise NbChatError(
            f"The last answer has {count}: there is no block {number}. "
            f"Use a number from 1 to {len(blocks)}, or --all."
        )
    return blocks[number - 1].code
