"""XLSX text with openpyxl: every sheet as a Markdown table under its name.

Cells show the values Excel saved with the file (``data_only=True``), which is what the
user saw. A formula cell without a saved value (files written by scripts are often never
opened in Excel) shows its formula instead of looking blank. Each sheet is capped at
:data:`~.table.MAX_TABLE_ROWS` rows, and the cut is said in the text and in the notes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from .record import Extracted, join_sections
from .table import MAX_TABLE_ROWS, cell_text, markdown_table, rows_cut_line

__all__ = ["extract_xlsx"]


def _rows(sheet: Any) -> Iterator[tuple[Any, ...]]:
    return iter(sheet.iter_rows(values_only=True))


def _sheet_total_rows(sheet: Any, rows_seen: int, remaining: Iterator[tuple[Any, ...]]) -> int:
    """Rows in a sheet that was cut: its declared dimension, else counted to the end."""
    max_row = getattr(sheet, "max_row", None)
    min_row = getattr(sheet, "min_row", None) or 1
    if isinstance(max_row, int) and max_row - min_row + 1 >= rows_seen:
        return max_row - min_row + 1
    return rows_seen + sum(1 for _ in remaining)


def _sheet_table(values_sheet: Any, formulas_sheet: Any) -> tuple[str, int, int, int]:
    """(Markdown table, rows shown, total rows, formula cells shown as formulas)."""
    value_rows = _rows(values_sheet)
    formula_rows = _rows(formulas_sheet)
    rows: list[list[str]] = []
    rows_seen = 0
    formulas_shown = 0
    cut = False
    for values in value_rows:
        formulas = next(formula_rows, ())
        rows_seen += 1
        cells = []
        for index, value in enumerate(values):
            if value is None and index < len(formulas):
                formula = formulas[index]
                if isinstance(formula, str) and formula.startswith("="):
                    value = formula
                    formulas_shown += 1
            cells.append(cell_text(value))
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) == MAX_TABLE_ROWS:
            cut = True
            break
        rows.append(cells)
    total = _sheet_total_rows(values_sheet, rows_seen, value_rows) if cut else len(rows)
    return markdown_table(rows), len(rows), total, formulas_shown


def extract_xlsx(data: bytes, name: str) -> Extracted:
    """``## Sheet: name`` and a table for every worksheet, in workbook order."""
    import openpyxl

    values_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    formulas_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        parts: list[tuple[str, int, str, str]] = []
        notes: list[str] = []
        any_rows = False
        sheets = zip(values_book.worksheets, formulas_book.worksheets)
        for number, (values_sheet, formulas_sheet) in enumerate(sheets, start=1):
            title = values_sheet.title
            hidden = " (hidden)" if values_sheet.sheet_state != "visible" else ""
            table, shown, total, formulas_shown = _sheet_table(values_sheet, formulas_sheet)
            body = table or "(empty sheet)"
            any_rows = any_rows or bool(table)
            if total > shown:
                body += "\n" + rows_cut_line(total, shown)
                notes.append(f"sheet '{title}' has {total:,} rows; first {shown:,} shown")
            if formulas_shown:
                cells = (
                    "1 formula cell has"
                    if formulas_shown == 1
                    else f"{formulas_shown:,} formula cells have"
                )
                notes.append(
                    f"sheet '{title}': {cells} no saved result, so the formula is shown"
                )
            parts.append(("sheet", number, title, f"## Sheet: {title}{hidden}\n\n{body}"))
        for chart in values_book.chartsheets:
            notes.append(f"chart sheet '{chart.title}' not included")
    finally:
        values_book.close()
        formulas_book.close()
    if not any_rows:
        return Extracted(text="", kind="xlsx", notes=tuple(notes))
    text, sections = join_sections(parts)
    return Extracted(text=text, kind="xlsx", notes=tuple(notes), sections=sections)
