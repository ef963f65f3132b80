"""DOCX text with python-docx: paragraphs and tables, in document order.

python-docx opens and validates the package; the body is then walked as XML so that
content python-docx's own ``.text`` skips still counts: text inside content controls,
tracked insertions, hyperlinks and text boxes. Headings become Markdown headings, list
items ``-`` bullets, tables Markdown tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from .record import Extracted
from .table import markdown_table

__all__ = ["extract_docx"]

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_SKIPPED = {
    _MC_FALLBACK,  # a second copy of text boxes, for old readers
    f"{_W}del",  # tracked deletions
    f"{_W}instrText",  # field codes such as PAGE or TOC
    f"{_W}rPr",
    f"{_W}pPr",
}


def _run_text(element: Any, out: list[str]) -> None:
    """Append the visible text under ``element`` to ``out``."""
    for child in element.iterchildren():
        tag = child.tag
        if not isinstance(tag, str) or tag in _SKIPPED:
            continue
        if tag == f"{_W}t":
            out.append(child.text or "")
        elif tag == f"{_W}tab":
            out.append("\t")
        elif tag in (f"{_W}br", f"{_W}cr"):
            out.append("\n")
        elif tag == f"{_W}noBreakHyphen":
            out.append("-")
        elif tag == f"{_W}p":  # a paragraph inside a text box
            out.append("\n")
            _run_text(child, out)
            out.append("\n")
        else:
            _run_text(child, out)


def _paragraph_text(paragraph: Any) -> str:
    out: list[str] = []
    _run_text(paragraph, out)
    return "".join(out).strip()


def _paragraph_markdown(paragraph: Any, style_names: dict[str, str]) -> str:
    """The paragraph's text, with a heading or bullet prefix from its style."""
    text = _paragraph_text(paragraph)
    if not text:
        return ""
    style_element = paragraph.find(f"{_W}pPr/{_W}pStyle")
    style_id = style_element.get(f"{_W}val", "") if style_element is not None else ""
    style = style_names.get(style_id, style_id)
    lowered = style.lower().replace(" ", "")
    if lowered == "title":
        return f"# {text}"
    if lowered.startswith("heading") and lowered[7:].isdigit():
        level = min(int(lowered[7:]), 6)
        return f"{'#' * level} {text}"
    numbering = paragraph.find(f"{_W}pPr/{_W}numPr")
    if numbering is not None or lowered.startswith("list"):
        level_element = numbering.find(f"{_W}ilvl") if numbering is not None else None
        level_text = level_element.get(f"{_W}val", "0") if level_element is not None else "0"
        level = int(level_text) if level_text.isdigit() else 0
        return f"{'  ' * min(level, 8)}- {text}"
    return text


def _cell_text(cell: Any) -> str:
    """All paragraphs of a cell (including nested tables) on one line, ``<br>``-joined."""
    lines: list[str] = []
    for block in _blocks(cell):
        if block.tag == f"{_W}tbl":
            for row in block.iterchildren(f"{_W}tr"):
                inner = [_cell_text(c) for c in row.iterchildren(f"{_W}tc")]
                lines.append(" / ".join(text for text in inner if text))
        else:
            lines.append(_paragraph_text(block))
    return "\n".join(line for line in lines if line)


def _table_markdown(table: Any) -> str:
    rows: list[list[str]] = []
    for row in table.iterchildren(f"{_W}tr"):
        cells: list[str] = []
        for cell in row.iterchildren(f"{_W}tc"):
            cells.append(_cell_text(cell))
            span = cell.find(f"{_W}tcPr/{_W}gridSpan")
            span_text = span.get(f"{_W}val", "1") if span is not None else "1"
            if span_text.isdigit() and 1 < int(span_text) <= 64:
                cells += [""] * (int(span_text) - 1)
        if any(cells):
            rows.append(cells)
    return markdown_table(rows)


def _blocks(container: Any) -> Iterator[Any]:
    """Paragraphs and tables in document order, looking inside content controls."""
    for child in container.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child
        elif child.tag == f"{_W}sdt":
            for content in child.iterchildren(f"{_W}sdtContent"):
                yield from _blocks(content)
        elif child.tag in (f"{_W}customXml", f"{_W}ins"):
            yield from _blocks(child)


def _open_body(data: bytes) -> tuple[Any, dict[str, str]]:
    """The ``w:body`` element and a style-id -> style-name map.

    ``docx.Document`` refuses macro-enabled documents and templates (.docm, .dotx)
    by their content type although their body is the same XML; those are parsed from
    the main part directly, with style ids standing in for style names.
    """
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except ValueError:
        from docx.oxml import parse_xml
        from docx.package import Package

        part = Package.open(io.BytesIO(data)).main_document_part
        root = parse_xml(part.blob)
        if root.tag != f"{_W}document":
            raise
        return root.find(f"{_W}body"), {}
    styles = {style.style_id: style.name for style in document.styles if style.name}
    return document.element.body, styles


def extract_docx(data: bytes, name: str) -> Extracted:
    """Paragraphs and tables of the main document, in order; images are counted."""
    body, style_names = _open_body(data)
    parts: list[str] = []
    previous_was_item = False
    for block in _blocks(body):
        if block.tag == f"{_W}tbl":
            text, is_item = _table_markdown(block), False
        else:
            text = _paragraph_markdown(block, style_names)
            is_item = text.lstrip().startswith("- ")
        if not text:
            continue
        if is_item and previous_was_item:
            parts[-1] += "\n" + text  # keep a list together
        else:
            parts.append(text)
        previous_was_item = is_item
    notes = []
    drawings = sum(1 for _ in body.iter(f"{_W}drawing", f"{_W}pict"))
    if drawings:
        what = "image or drawing" if drawings == 1 else "images or drawings"
        notes.append(f"{drawings} {what} not included")
    return Extracted(text="\n\n".join(parts), kind="docx", notes=tuple(notes))
