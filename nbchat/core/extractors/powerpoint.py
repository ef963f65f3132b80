"""PPTX text with python-pptx: slide by slide, title, text, tables and speaker notes.

Shapes are read top to bottom, then left to right, which is how people read a slide
(the file stores them in drawing order, which is often not). Pictures and charts are
counted in the notes, not described.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from .record import Extracted, join_sections
from .table import markdown_table

__all__ = ["extract_pptx"]


def _open(data: bytes) -> Any:
    """The presentation; templates and slide shows (.potx, .ppsx) are accepted too."""
    from pptx import Presentation

    try:
        return Presentation(io.BytesIO(data))
    except ValueError:
        from pptx.package import Package

        part = Package.open(io.BytesIO(data)).main_document_part
        if not hasattr(part, "presentation"):
            raise
        return part.presentation


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    return sorted(shapes, key=lambda shape: (shape.top or 0, shape.left or 0))


def _flatten(shapes: Iterable[Any]) -> Iterator[Any]:
    """Every shape, with the shapes inside groups in place of the group."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in _reading_order(shapes):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _flatten(shape.shapes)
        else:
            yield shape


def _frame_text(frame: Any) -> str:
    lines = []
    for paragraph in frame.paragraphs:
        text = paragraph.text.replace("\v", "\n").strip()
        if text:
            lines.append("  " * min(paragraph.level, 8) + text)
    return "\n".join(lines)


def _table_text(table: Any) -> str:
    rows = [[cell.text.replace("\v", "\n") for cell in row.cells] for row in table.rows]
    return markdown_table([row for row in rows if any(cell.strip() for cell in row)])


def _title_of(slide: Any) -> tuple[Any, str]:
    title_shape = slide.shapes.title
    if title_shape is None or not title_shape.has_text_frame:
        return None, ""
    return title_shape, " ".join(title_shape.text_frame.text.split())


def extract_pptx(data: bytes, name: str) -> Extracted:
    """``## Slide N: title`` then the slide's text, tables and notes, for every slide."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    presentation = _open(data)
    parts: list[tuple[str, int, str, str]] = []
    pictures = 0
    charts = 0
    has_text = False
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape, title = _title_of(slide)
        hidden = " (hidden)" if slide.element.get("show") == "0" else ""
        heading = f"## Slide {number}: {title}" if title else f"## Slide {number}"
        blocks = [heading + hidden]
        has_text = has_text or bool(title)
        for shape in _flatten(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
                pictures += 1
            if getattr(shape, "has_chart", False):
                charts += 1
            if getattr(shape, "has_table", False):
                text = _table_text(shape.table)
            elif getattr(shape, "has_text_frame", False):
                text = _frame_text(shape.text_frame)
            else:
                text = ""
            if text:
                blocks.append(text)
                has_text = True
        if slide.has_notes_slide:
            frame = slide.notes_slide.notes_text_frame
            notes_text = _frame_text(frame) if frame is not None else ""
            if notes_text:
                blocks.append(f"Notes:\n{notes_text}")
                has_text = True
        parts.append(("slide", number, title, "\n\n".join(blocks)))
    notes = []
    if pictures:
        notes.append(f"{pictures} picture{'s' if pictures != 1 else ''} not included")
    if charts:
        notes.append(f"{charts} chart{'s' if charts != 1 else ''} not included")
    if not has_text:
        return Extracted(text="", kind="pptx", notes=tuple(notes))
    text, sections = join_sections(parts)
    return Extracted(text=text, kind="pptx", notes=tuple(notes), sections=sections)
