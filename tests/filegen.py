"""Writers of real test files: PDF, DOCX, XLSX, PPTX, CSV, text, notebooks, broken files.

Each ``make_*`` function writes one file into ``directory`` and returns its path. The
files are made by the same libraries people's tools use (fpdf2, pypdf, python-docx,
openpyxl, python-pptx), so the extractors are tested on real files, not mocks. The
content is deterministic and every writer takes well under a second.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from xml.sax.saxutils import escape

__all__ = [
    "Heading",
    "Bullet",
    "Picture",
    "Formula",
    "Slide",
    "make_text_pdf",
    "make_image_only_pdf",
    "make_encrypted_pdf",
    "make_ocr_layer_pdf",
    "make_docx",
    "make_xlsx",
    "make_pptx",
    "make_text",
    "make_csv",
    "make_html",
    "make_notebook",
    "markdown_cell",
    "code_cell",
    "stream_output",
    "result_output",
    "image_output",
    "error_output",
    "make_truncated",
    "make_zip",
    "make_zip_bomb_docx",
    "rewrite_zip_member",
    "make_random_bytes",
    "tiny_png",
]

_FIXED_DATE = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)

PathLike = Union[str, "os.PathLike[str]"]


def _target(directory: PathLike, name: str) -> Path:
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- images


def tiny_png(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small solid-colour PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- PDF


def _pdf_bytes(pages: Sequence[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def make_text_pdf(directory: PathLike, name: str, pages: Sequence[str]) -> Path:
    """A PDF with one page per string, each page's text in a real text layer.

    An empty string makes a page with no text. Core fonts only: Latin-1 text.
    """
    path = _target(directory, name)
    path.write_bytes(_pdf_bytes(pages))
    return path


def make_image_only_pdf(directory: PathLike, name: str, page_count: int = 1) -> Path:
    """A PDF whose pages hold only a picture and drawn shapes, like a scan: no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_FIXED_DATE)
    picture = io.BytesIO(tiny_png(32, 32, (20, 20, 20)))
    for _ in range(page_count):
        pdf.add_page()
        pdf.set_fill_color(180, 180, 180)
        pdf.rect(20, 20, 120, 30, style="F")
        pdf.rect(20, 60, 160, 8, style="D")
        picture.seek(0)
        pdf.image(picture, x=20, y=80, w=100)
    path = _target(directory, name)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_encrypted_pdf(
    directory: PathLike,
    name: str,
    text: str,
    user_password: str,
    owner_password: str = "owner-secret",
) -> Path:
    """A text PDF encrypted with pypdf (RC4-128, which needs no extra package).

    ``user_password=""`` makes the common "owner-only" PDF: anyone can open it, the
    owner password only restricts printing or editing.
    """
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes([text]))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    path = _target(directory, name)
    path.write_bytes(buffer.getvalue())
    return path


def make_ocr_layer_pdf(
    directory: PathLike,
    name: str,
    pages: Sequence[str],
    *,
    spaced_pages: Iterable[int] | None = None,
    letter_spacing: float = 2.5,
) -> Path:
    """A PDF whose words are drawn the way some OCR tools fit them to a scanned word.

    On the pages in ``spaced_pages`` (1-based; all pages by default) each word's letters
    are spaced out (``Tc``) and its last letter is drawn on its own, as in the text layer
    of scanned documents: PDFium reads such words split ("Unite d Ara b"), pypdf reads
    them whole. The other pages are drawn plainly. Helvetica, Latin-1 text, 60
    characters a line.
    """
    spaced = set(range(1, len(pages) + 1) if spaced_pages is None else spaced_pages)
    streams = [
        _word_by_word_content(text, letter_spacing if number in spaced else 0.0)
        for number, text in enumerate(pages, start=1)
    ]
    path = _target(directory, name)
    path.write_bytes(_handmade_pdf(streams))
    return path


def _word_by_word_content(text: str, letter_spacing: float) -> bytes:
    """A page's content stream: lines of words, each word's head with letter spacing
    ``letter_spacing`` and its last letter in a separate text-showing operator."""

    def literal(part: str) -> str:
        return "(" + part.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"

    lines: list[list[str]] = [[]]
    for word in text.split():
        if lines[-1] and len(" ".join(lines[-1] + [word])) > 60:
            lines.append([])
        lines[-1].append(word)
    if len(lines) > 45:
        raise ValueError(f"{len(lines)} lines do not fit on one page (45 at most)")
    operators = ["BT", "/F1 11 Tf"]
    for row, words in enumerate(lines):
        operators.append(f"1 0 0 1 72 {740 - 15 * row} Tm")
        for index, word in enumerate(words):
            head = (" " if index else "") + word[:-1]
            if head:
                operators.append(f"{letter_spacing} Tc {literal(head)} Tj")
            operators.append(f"0 Tc {literal(word[-1])} Tj")
    operators.append("ET")
    return "\n".join(operators).encode("latin-1")


def _handmade_pdf(page_streams: Sequence[bytes]) -> bytes:
    """A minimal, valid PDF (classic cross-reference table) with these content streams,
    one page each, and the standard Helvetica font as ``/F1``."""
    count = len(page_streams)
    page_ids = [4 + 2 * i for i in range(count)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % i for i in page_ids)
        + b"] /Count %d >>" % count,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for page_id, stream in zip(page_ids, page_streams):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref
    )
    return bytes(out)


# --------------------------------------------------------------------------- DOCX


@dataclass(frozen=True)
class Heading:
    """A heading paragraph in :func:`make_docx` (level 0 is the document title)."""

    text: str
    level: int = 1


@dataclass(frozen=True)
class Bullet:
    """A bulleted list item in :func:`make_docx`."""

    text: str


@dataclass(frozen=True)
class Picture:
    """An inline picture in :func:`make_docx`."""


DocxBlock = Union[str, Heading, Bullet, Picture, Sequence[Sequence[Any]]]


def make_docx(
    directory: PathLike,
    name: str,
    blocks: Iterable[DocxBlock] = (),
    *,
    paragraphs: Iterable[str] = (),
    table_rows: Sequence[Sequence[Any]] | None = None,
) -> Path:
    """A Word document made with python-docx.

    ``blocks`` are written in order: a string is a paragraph, a list of rows a table,
    :class:`Heading`, :class:`Bullet` and :class:`Picture` what they say. The short form
    ``paragraphs=[...], table_rows=[...]`` writes the paragraphs, then the table.
    """
    import docx
    from docx.shared import Inches

    document = docx.Document()
    document.core_properties.created = _FIXED_DATE.replace(tzinfo=None)
    document.core_properties.modified = _FIXED_DATE.replace(tzinfo=None)
    all_blocks: list[DocxBlock] = [*blocks, *paragraphs]
    if table_rows is not None:
        all_blocks.append(table_rows)
    for block in all_blocks:
        if isinstance(block, str):
            document.add_paragraph(block)
        elif isinstance(block, Heading):
            document.add_heading(block.text, block.level)
        elif isinstance(block, Bullet):
            document.add_paragraph(block.text, style="List Bullet")
        elif isinstance(block, Picture):
            document.add_picture(io.BytesIO(tiny_png()), width=Inches(0.5))
        else:
            rows = [list(row) for row in block]
            width = max((len(row) for row in rows), default=1)
            table = document.add_table(rows=len(rows), cols=width)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = str(value)
    path = _target(directory, name)
    document.save(str(path))
    return path


# --------------------------------------------------------------------------- XLSX


@dataclass(frozen=True)
class Formula:
    """A formula cell for :func:`make_xlsx`; ``cached`` is the result saved with it.

    openpyxl writes formulas without results (it cannot compute them). With
    ``cached`` set, the result is written into the file the way Excel saves it, so a
    reader using ``data_only=True`` sees it. With ``cached=None`` the cell has a
    formula and no saved result, like a workbook a script wrote and Excel never opened.
    """

    expression: str
    cached: float | int | str | None = None


def make_xlsx(
    directory: PathLike, name: str, sheets: Mapping[str, Sequence[Sequence[Any]]]
) -> Path:
    """A workbook with one sheet per entry, rows written in order (openpyxl)."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    book.remove(book.active)
    cached: dict[int, dict[str, Formula]] = {}
    for index, (title, rows) in enumerate(sheets.items()):
        sheet = book.create_sheet(title)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if isinstance(value, Formula):
                    sheet.cell(r, c, value.expression)
                    if value.cached is not None:
                        cached.setdefault(index + 1, {})[f"{get_column_letter(c)}{r}"] = value
                else:
                    sheet.cell(r, c, value)
    book.properties.created = _FIXED_DATE.replace(tzinfo=None)
    book.properties.modified = _FIXED_DATE.replace(tzinfo=None)
    buffer = io.BytesIO()
    book.save(buffer)
    data = _with_cached_results(buffer.getvalue(), cached)
    path = _target(directory, name)
    path.write_bytes(data)
    return path


def _with_cached_results(data: bytes, cached: dict[int, dict[str, Formula]]) -> bytes:
    """Write saved formula results into the sheets' XML, as Excel does on save."""
    if not cached:
        return data
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            match = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", info.filename)
            if match and int(match.group(1)) in cached:
                xml = content.decode("utf-8")
                for ref, formula in cached[int(match.group(1))].items():
                    kind = ' t="str"' if isinstance(formula.cached, str) else ""
                    pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*(?:/>|></v>)')
                    found = pattern.search(xml)
                    if found is None:
                        raise ValueError(f"formula cell {ref} not found in the sheet XML")
                    value = escape(str(formula.cached))
                    attributes, expression = found.group(1), found.group(2)
                    cell = f'<c r="{ref}"{attributes}{kind}><f>{expression}</f><v>{value}</v>'
                    xml = xml[: found.start()] + cell + xml[found.end() :]
                content = xml.encode("utf-8")
            target.writestr(info, content)
    return out.getvalue()


# --------------------------------------------------------------------------- PPTX


@dataclass(frozen=True)
class Slide:
    """One slide for :func:`make_pptx`."""

    title: str
    body: str = ""
    notes: str = ""
    table: Sequence[Sequence[Any]] | None = None
    picture: bool = False


def make_pptx(
    directory: PathLike, name: str, slides: Iterable[Slide | tuple[str, str]]
) -> Path:
    """A presentation (python-pptx) with a title-and-content slide per entry.

    ``body`` lines become bullet paragraphs; ``notes`` go to the speaker notes.
    """
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.created = _FIXED_DATE.replace(tzinfo=None)
    presentation.core_properties.modified = _FIXED_DATE.replace(tzinfo=None)
    layout = presentation.slide_layouts[1]  # title and content
    for entry in slides:
        spec = entry if isinstance(entry, Slide) else Slide(*entry)
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = spec.title
        body = slide.placeholders[1].text_frame
        lines = spec.body.split("\n") if spec.body else []
        if lines:
            body.text = lines[0]
            for line in lines[1:]:
                body.add_paragraph().text = line
        if spec.table:
            rows = [list(row) for row in spec.table]
            shape = slide.shapes.add_table(
                len(rows), max(len(r) for r in rows), Inches(1), Inches(5), Inches(6), Inches(1)
            )
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = str(value)
        if spec.picture:
            slide.shapes.add_picture(io.BytesIO(tiny_png()), Inches(8), Inches(6), Inches(0.5))
        if spec.notes:
            slide.notes_slide.notes_text_frame.text = spec.notes
    path = _target(directory, name)
    presentation.save(str(path))
    return path


# --------------------------------------------------------------------------- text


def make_text(directory: PathLike, name: str, text: str, encoding: str = "utf-8") -> Path:
    """``text`` encoded with ``encoding`` (``utf-16`` and ``utf-8-sig`` write a BOM)."""
    path = _target(directory, name)
    path.write_bytes(text.encode(encoding))
    return path


def make_csv(
    directory: PathLike,
    name: str,
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """Rows written with the csv module (quoting as needed), ``\\r\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    for row in rows:
        writer.writerow(row)
    return make_text(directory, name, buffer.getvalue(), encoding)


def make_html(
    directory: PathLike, name: str, body: str, *, title: str = "", head: str = ""
) -> Path:
    """A small HTML page around ``body``."""
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>{head}</head>\n<body>{body}</body></html>\n"
    )
    return make_text(directory, name, page)


# --------------------------------------------------------------------------- notebooks


def markdown_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source.splitlines(keepends=True)}


def code_cell(
    source: str, outputs: Sequence[dict[str, Any]] = (), count: int | None = None
) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": count,
        "metadata": {},
        "outputs": list(outputs),
        "source": source.splitlines(keepends=True),
    }


def stream_output(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text.splitlines(keepends=True)}


def result_output(text_plain: str, count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "output_type": "execute_result",
        "execution_count": count,
        "metadata": {},
        "data": {"text/plain": text_plain, **extra},
    }


def image_output(mime: str = "image/png") -> dict[str, Any]:
    import base64

    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            mime: base64.b64encode(tiny_png()).decode("ascii"),
            "text/plain": "<Figure size 640x480 with 1 Axes>",
        },
    }


def error_output(ename: str, evalue: str) -> dict[str, Any]:
    """An error output with a coloured traceback, as IPython writes it."""
    return {
        "output_type": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": [
            "\x1b[0;31m---------------------------------------------------------------\x1b[0m",
            f"\x1b[0;31m{ename}\x1b[0m                Traceback (most recent call last)",
            "Cell \x1b[0;32mIn[1], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m",
            f"\x1b[0;31m{ename}\x1b[0m: {evalue}",
        ],
    }


def make_notebook(
    directory: PathLike,
    name: str,
    cells: Sequence[dict[str, Any]],
    *,
    language: str = "python",
) -> Path:
    """An nbformat-4 notebook with ``cells`` (see :func:`markdown_cell`, :func:`code_cell`)."""
    notebook = {
        "cells": list(cells),
        "metadata": {
            "kernelspec": {"display_name": language, "language": language, "name": language},
            "language_info": {"name": language},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return make_text(directory, name, json.dumps(notebook, indent=1) + "\n")


# --------------------------------------------------------------------------- broken files


def make_truncated(path: PathLike) -> Path:
    """A copy of ``path`` cut in half, next to it, named ``truncated-<name>``."""
    source = Path(path)
    data = source.read_bytes()
    target = source.with_name(f"truncated-{source.name}")
    target.write_bytes(data[: len(data) // 2])
    return target


def make_zip(directory: PathLike, name: str, members: Mapping[str, bytes | str]) -> Path:
    """A zip archive holding ``members`` (e.g. an Office file with a part missing)."""
    path = _target(directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return path


def rewrite_zip_member(path: PathLike, member: str, transform: Any) -> Path:
    """Rewrite one member of a zip (an Office file) in place: ``transform(bytes) -> bytes``.

    For XML surgery a library cannot do, e.g. tracked changes or content controls in a
    DOCX, or a damaged part.
    """
    target = Path(path)
    source = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == member:
                content = transform(content)
            archive.writestr(info.filename, content)
    target.write_bytes(out.getvalue())
    return target


def make_zip_bomb_docx(
    directory: PathLike, name: str, inflated_bytes: int = 20 * 1024 * 1024
) -> Path:
    """A real, small DOCX whose ``word/document.xml`` inflates to ``inflated_bytes``.

    The body is valid WordprocessingML padded with whitespace between elements, so a
    parser would accept it; the file on disk stays tens of KB (ratio about 1000:1).
    """
    import docx

    document = docx.Document()
    document.add_paragraph("Looks harmless.")
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    path = _target(directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "word/document.xml":
                head, tail = content.rsplit(b"</w:body>", 1)
                padding = inflated_bytes - len(content)
                with target.open("word/document.xml", "w") as member:
                    member.write(head)
                    chunk = b" " * (1024 * 1024)
                    while padding > 0:
                        member.write(chunk[: min(padding, len(chunk))])
                        padding -= len(chunk)
                    member.write(b"</w:body>" + tail)
            else:
                target.writestr(info.filename, content)
    return path


def make_random_bytes(directory: PathLike, name: str, size: int = 4096, seed: int = 7) -> Path:
    """``size`` pseudo-random bytes (the same for the same seed), e.g. a fake ``.pdf``."""
    path = _target(directory, name)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path
