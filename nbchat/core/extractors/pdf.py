"""PDF text, page by page: PDFium for speed, pypdf where PDFium reads a page worse.

PDFium (``pypdfium2``) reads text about 10x faster than pypdf (20x on LaTeX books), with
as much text, and spells ligatures as plain letters. On some PDFs, though, it splits
words: OCR layers that space a word's letters out and draw its last letter on its own
come back as "Unite d Ara b Shippin g" where pypdf reads "United Arab Shipping".

The rule, page by page (figures in docs/performance.md):

1. PDFium reads the page.
2. pypdf reads it too when PDFium found no text, or when PDFium's words look split: more
   than :data:`SPLIT_SHARE` of its words are a lone lowercase letter right after a word
   (``"Unite d"``). pypdf's text replaces PDFium's when it has text and PDFium had none,
   or when it has at most half of PDFium's share of detached letters and no fewer
   letters (at least :data:`KEPT_LETTERS` of them), so that pypdf never wins by losing
   text.
3. A file PDFium cannot open (password, damage, not a PDF), or opens only by rebuilding
   its cross-reference table, is read by pypdf alone, exactly as before PDFium was used:
   it gets the same errors and the same text as ever.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import problems
from .record import Extracted, join_sections, page_marker

__all__ = [
    "PageText",
    "SPLIT_SHARE",
    "KEPT_LETTERS",
    "extract_pdf",
    "read_pages",
    "detached_share",
]

#: Above this share of detached letters among a page's words, PDFium's words look split.
#: On the real PDFs measured (docs/performance.md), pages whose words are whole stay at
#: or under 0.06 (LaTeX pages full of one-letter variables; prose is under 0.05), and the
#: pages whose words PDFium splits are at 0.22-0.27: 0.12 is twice the first and still
#: well under the second. A false alarm only costs a pypdf reading of the page.
SPLIT_SHARE = 0.12

#: pypdf's text replaces a split page only if it keeps this share of PDFium's letters.
KEPT_LETTERS = 0.97

#: PDFium is not thread-safe; a chat panel's worker thread and a cell may both extract.
_PDFIUM_LOCK = threading.Lock()

_LETTER_RUN = re.compile(r"[^\W\d_]+")
#: A lone letter after a space, before a space, a punctuation mark or the end: with a
#: word of two or more letters before the space, it is a detached letter, as in
#: "Unite d Ara b" or "Limite d." (not "f(x)" or "γ1", common in formulas).
_LONE_LETTER = re.compile(r" ([^\W\d_])(?=[\s.,;:!?]|$)")


@dataclass(frozen=True)
class PageText:
    """One page's text (stripped; ``""`` when it has none, ``None`` when unreadable),
    and which library read it: ``"pdfium"`` or ``"pypdf"``."""

    number: int
    text: str | None
    reader: str


def extract_pdf(data: bytes, name: str) -> Extracted:
    """Each page's text under a ``--- page N ---`` marker.

    A page whose text cannot be read is marked and reported in the notes rather than
    losing the whole document; pages with no text layer are listed in the notes too.
    """
    pages = read_pages(data, name)
    parts: list[tuple[str, int, str, str]] = []
    blank_pages: list[int] = []
    failed_pages: list[int] = []
    for page in pages:
        marker = page_marker(page.number)
        if page.text is None:
            failed_pages.append(page.number)
            parts.append(
                ("page", page.number, "", f"{marker}\n[the text of this page could not be read]")
            )
        elif page.text:
            parts.append(("page", page.number, "", f"{marker}\n{page.text}"))
        else:
            blank_pages.append(page.number)
            parts.append(("page", page.number, "", marker))
    if len(blank_pages) + len(failed_pages) == len(pages):
        raise problems.no_pdf_text(name, len(pages))
    notes = []
    if blank_pages:
        verb = "has" if len(blank_pages) == 1 else "have"
        notes.append(
            f"{_page_list(blank_pages)} {verb} no text (scanned or images only); "
            "only the text of the other pages is included"
        )
    if failed_pages:
        notes.append(f"the text of {_page_list(failed_pages)} could not be read")
    text, sections = join_sections(parts)
    return Extracted(text=text, kind="pdf", notes=tuple(notes), sections=sections)


def read_pages(data: bytes, name: str) -> tuple[PageText, ...]:
    """Every page's text by the rule of this module, in page order.

    Raises the :mod:`problems` errors for a file that is not a PDF, is password-protected
    or damaged, or of which no page could be read; a parsing library's own exception is
    left for :func:`nbchat.core.extract.extract_bytes` to translate.
    """
    if b"%PDF-" not in data[:1024]:
        raise problems.corrupted(name, "pdf", "it does not start like a PDF")
    with _quiet_pypdf(), _PDFIUM_LOCK:
        pypdf = _PypdfPages(data, name)
        document = _open_pdfium(data)
        if document is None:
            pages = tuple(pypdf.page(n) for n in range(1, pypdf.count() + 1))
        else:
            try:
                pages = tuple(
                    _choose(number, _pdfium_page_text(document, number), pypdf.page)
                    for number in range(1, len(document) + 1)
                )
            finally:
                document.close()
    if pages and all(page.text is None for page in pages):
        raise problems.corrupted(name, "pdf", "no page could be read") from pypdf.first_failure
    return pages


def _choose(number: int, text: str | None, pypdf_page: Callable[[int], PageText]) -> PageText:
    """PDFium's page, or pypdf's where PDFium read nothing or split the words."""
    if text and detached_share(text) <= SPLIT_SHARE:
        return PageText(number, text, "pdfium")
    other = pypdf_page(number)
    if other.text is not None and (not text or _reads_better(other.text, text)):
        return other
    return PageText(number, text, "pdfium")


def _reads_better(candidate: str, split: str) -> bool:
    """``candidate`` has at most half the detached letters of ``split`` and no fewer letters."""
    letters = sum(len(run) for run in _LETTER_RUN.findall(split))
    kept = sum(len(run) for run in _LETTER_RUN.findall(candidate))
    return kept >= KEPT_LETTERS * letters and detached_share(candidate) <= detached_share(split) / 2


def detached_share(text: str) -> float:
    """Lone lowercase letters right after a word (``"Unite d"``), per word of ``text``
    (words as separated by whitespace)."""
    detached = 0
    for match in _LONE_LETTER.finditer(text):
        start = match.start()
        if match.group(1).islower() and start >= 2 and text[start - 2 : start].isalpha():
            detached += 1
    return detached / len(text.split()) if detached else 0.0


# --------------------------------------------------------------------------- PDFium


def _open_pdfium(data: bytes) -> Any | None:
    """The document, or ``None`` when PDFium cannot open it as it is.

    A document whose cross-reference table PDFium had to rebuild is damaged: pypdf reads
    it instead, so that it is refused, or repaired, exactly as before.
    """
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return None
    if not pdfium_c.FPDF_DocumentHasValidCrossReferenceTable(document):
        document.close()
        return None
    return document


def _pdfium_page_text(document: Any, number: int) -> str | None:
    """The page's text, stripped, with pypdf's line ends; ``None`` if PDFium fails on it."""
    import pypdfium2

    try:
        page = document[number - 1]
        try:
            textpage = page.get_textpage()
            try:
                raw: str = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
    except pypdfium2.PdfiumError:
        return None
    # PDFium joins a word hyphenated at a line end and marks the hyphen with U+FFFE;
    # pypdf keeps the hyphen and the line break, and so do we (it may be a real hyphen).
    return raw.replace("\r\n", "\n").replace("\ufffe", "-\n").strip()


# --------------------------------------------------------------------------- pypdf


class _PypdfPages:
    """pypdf's reading of the same file, opened on first use and only then."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._name = name
        self._reader: Any = None
        self._refused: Exception | None = None
        self.first_failure: Exception | None = None

    def count(self) -> int:
        return len(self._open().pages)

    def page(self, number: int) -> PageText:
        """The page's text, or ``text=None`` when pypdf cannot read it."""
        try:
            text = self._open().pages[number - 1].extract_text() or ""
        except Exception as error:  # one bad page must not hide the others
            self.first_failure = self.first_failure or error
            return PageText(number, None, "pypdf")
        return PageText(number, text.replace("\r\n", "\n").strip(), "pypdf")

    def _open(self) -> Any:
        if self._refused is not None:
            raise self._refused
        if self._reader is None:
            try:
                self._reader = _open_pypdf(self._data, self._name)
            except Exception as error:  # opened once: every later page gets the same answer
                self._refused = error
                raise
        return self._reader


def _open_pypdf(data: bytes, name: str) -> Any:
    """A reader with the document decrypted, or the matching error."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

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


def _page_list(numbers: list[int]) -> str:
    """``[3]`` -> ``"page 3"``; ``[2, 5]`` -> ``"pages 2, 5"``."""
    shown = ", ".join(str(n) for n in numbers[:20])
    if len(numbers) > 20:
        shown += f" and {len(numbers) - 20} more"
    return f"page {shown}" if len(numbers) == 1 else f"pages {shown}"
