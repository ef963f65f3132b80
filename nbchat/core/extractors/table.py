"""Rendering rows of cells as a Markdown table, the form models read tables best in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

__all__ = ["MAX_TABLE_ROWS", "cell_text", "markdown_table", "rows_cut_line"]

#: Rows of one table (sheet, CSV) rendered before the rest is counted but not shown.
MAX_TABLE_ROWS = 2_000


def cell_text(value: object) -> str:
    """One cell value as short text: ``3.0`` -> ``"3"``, dates without a zero time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"  # 15 digits, as spreadsheets show: 0.1 + 0.2 -> 0.3
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _escape(text: str) -> str:
    """Keep a cell on one line and its pipes from splitting it."""
    text = text.strip().replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("|", "\\|").replace("\n", "<br>")


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table whose header is the first row; short rows are padded.

    Trailing columns that are empty in every row are dropped (spreadsheets often
    report formatting far to the right of the data).
    """
    if not rows:
        return ""
    width = 0
    for row in rows:
        for index in range(len(row) - 1, -1, -1):
            if row[index].strip():
                width = max(width, index + 1)
                break
    width = max(width, 1)
    lines = []
    for number, row in enumerate(rows):
        cells = [_escape(cell) for cell in row[:width]]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        if number == 0:
            lines.append("|" + "|".join(["---"] * width) + "|")
    return "\n".join(lines)


def rows_cut_line(total_rows: int, shown_rows: int) -> str:
    """The visible line under a table that was cut."""
    return f"[{total_rows:,} rows in total; first {shown_rows:,} shown]"
