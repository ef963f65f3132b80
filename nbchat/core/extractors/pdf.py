"""PDF text, page by page, with pypdf."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

from . import problems
from .record import Extracted

__all__ = ["extract_pdf"]


def _open(data: bytes, name: str) -> Any:
    """A reader with the document decrypted, or the matching error."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    if b"%PDF-" not in data[:1024]:
        raise problems.corrupted(name, "pdf", "it does not start like a PDF")
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # Many PDFs are encrypted only to restrict printing or copying: their user
        # password is empty and they open without asking anybody.
        try:
            opened = reader.decrypt("")
        except DependencyError as error:
            raise problems.needs_package(
                name,
                "cryptography",
                "it is encrypted with AES, which needs the 'cryptography' package",
            ) from error
        if not opened:
            raise problems.password_protected(name, "pdf")
    return reader


def extract_pdf(data: bytes, name: str) -> Extracted:
    """Each page's text under a ``--- page N ---`` marker.

    A page whose text cannot be read is marked and reported in the notes rather than
    losing the whole document; pages with no text layer are listed in the notes too.
    """
    with _quiet_pypdf():
        return _extract(data, name)


@contextlib.contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf logs warnings about harmless oddities; they would clutter the notebook."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _extract(data: bytes, name: str) -> Extracted:
    reader = _open(data, name)
    pages = reader.pages
    page_count = len(pages)
    parts: list[str] = []
    blank_pages: list[int] = []
    failed_pages: list[int] = []
    first_failure: Exception | None = None
    for number in range(1, page_count + 1):
        try:
            text = (pages[number - 1].extract_text() or "").strip()
        except Exception as error:  # one bad page must not hide the others
            failed_pages.append(number)
            first_failure = first_failure or error
            parts.append(f"--- page {number} ---\n[the text of this page could not be read]")
            continue
        if not text:
            blank_pages.append(number)
        parts.append(f"--- page {number} ---\n{text}" if text else f"--- page {number} ---")
    if failed_pages and len(failed_pages) == page_count:
        raise problems.corrupted(name, "pdf", "no page could be read") from first_failure
    if len(blank_pages) + len(failed_pages) == page_count:
        raise problems.no_pdf_text(name, page_count)
    notes = []
    if blank_pages:
        verb = "has" if len(blank_pages) == 1 else "have"
        notes.append(
            f"{_page_list(blank_pages)} {verb} no text (scanned or images only); "
            "only the text of the other pages is included"
        )
    if failed_pages:
        notes.append(f"the text of {_page_list(failed_pages)} could not be read")
    text = "\n\n".join(parts).replace("\r\n", "\n")
    return Extracted(text=text, kind="pdf", notes=tuple(notes))


def _page_list(numbers: list[int]) -> str:
    """``[3]`` -> ``"page 3"``; ``[2, 5]`` -> ``"pages 2, 5"``."""
    shown = ", ".join(str(n) for n in numbers[:20])
    if len(numbers) > 20:
        shown += f" and {len(numbers) - 20} more"
    return f"page {shown}" if len(numbers) == 1 else f"pages {shown}"
