"""The text a notebook cell is attached as: ``In [N]:`` and its source, then ``Out [N]:``
and its text output. ``--nb``, ``--cell`` and ``--error`` all use it, so the model sees
one format whichever way a cell reached it."""

from __future__ import annotations

__all__ = ["OUTPUT_CHARS", "IMAGE_PLACEHOLDER", "format_cell", "clip_block"]

OUTPUT_CHARS = 4_000  # of one cell's output; the rest is cut, visibly
IMAGE_PLACEHOLDER = "[image output]"


def format_cell(
    number: int, source: str, output: str = "", *, max_output_chars: int = OUTPUT_CHARS
) -> str:
    """``In [number]:`` with ``source``, and ``Out [number]:`` when ``output`` has text."""
    parts = [f"In [{number}]:\n{source.rstrip()}"]
    if output.strip():
        parts.append(f"Out [{number}]:\n{clip_block(output.rstrip(), max_output_chars)}")
    return "\n\n".join(parts)


def clip_block(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit:,} more characters]"
