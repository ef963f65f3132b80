"""HTML as readable text: no tags, no scripts or styles, paragraph breaks kept.

Headings and list items keep a light Markdown shape (``#``, ``-``) and table cells are
separated by ``|``, so the structure survives without the markup.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from .charset import has_bom, normalise_newlines
from .plaintext import decode_or_refuse
from .record import Extracted

__all__ = ["extract_html", "html_to_text"]

_DROPPED = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "dd", "details", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "tfoot", "thead", "tr", "ul", "caption",
}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _TextCollector(HTMLParser):
    """Collects visible text; ``parts`` joined is the page's text with rough breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._dropped_depth = 0
        self._pre_depth = 0
        self._in_title = False
        self._cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropped_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "tr":
            self.parts.append("\n")
            self._cells_in_row = 0
        elif tag in ("td", "th"):
            if self._cells_in_row:
                self.parts.append(" | ")
            self._cells_in_row += 1
        elif tag == "p":
            self.parts.append("\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "pre":
            self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _DROPPED:  # <br/>, <hr/>: a break; a self-closed <script/>: nothing
            self.handle_starttag(tag, attrs)
            if tag == "pre":
                self._pre_depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropped_depth = max(0, self._dropped_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6", "p"):
            self.parts.append("\n\n")
        elif tag in _BLOCKS and tag not in ("li", "tr"):  # the next one starts a line
            self.parts.append("\n")
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._dropped_depth:
            return
        if self._in_title:
            self.title.append(data)
            return
        if self._pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of ``html``: at most one blank line between blocks."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    body = "".join(collector.parts)
    lines = [line.rstrip() for line in body.split("\n")]
    lines = [line if line.strip() else "" for line in lines]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(collector.title).split())
    if title and not text.startswith(title) and not text.lstrip("# ").startswith(title):
        text = f"# {title}\n\n{text}" if text else title
    return text


def _declared_text(data: bytes) -> str | None:
    """The page decoded with the charset its ``<meta>`` declares, if that works."""
    if has_bom(data):
        return None
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        encoding = codecs.lookup(match.group(1).decode("ascii")).name
        return normalise_newlines(data.decode(encoding))
    except (LookupError, UnicodeDecodeError):
        return None


def extract_html(data: bytes, name: str) -> Extracted:
    declared = _declared_text(data)
    notes: tuple[str, ...] = ()
    if declared is not None:
        html = declared
    else:
        html, notes = decode_or_refuse(data, name, "html")
    return Extracted(text=html_to_text(html), kind="html", notes=notes)
