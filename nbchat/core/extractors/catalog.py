"""Every file format nbchat reads, once: its kind, name, extensions and extractor.

Adding a format is its extractor module (a function ``(data, name) -> Extracted``, or
``(data, name, kind)`` with ``takes_kind``) plus one :class:`Format` entry here: the
extension table, the list of kinds, the names used in messages and the dispatch of
:func:`nbchat.core.extract.extract_bytes` all derive from :data:`FORMATS`. Prose and
source code without an entry of their own (``.txt``, ``.py``...) are recognised by
:mod:`~nbchat.core.extractors.formats` and read as ``text`` or ``code``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Format", "FORMATS", "BY_KIND"]


@dataclass(frozen=True)
class Format:
    """One format: ``extractor`` is ``"module:function"`` inside this package, imported
    only when a file of the format is read (its library with it)."""

    kind: str
    label: str
    extensions: tuple[str, ...]
    extractor: str
    takes_kind: bool = False


FORMATS: tuple[Format, ...] = (
    Format("pdf", "PDF", (".pdf",), "pdf:extract_pdf"),
    Format("docx", "DOCX (Word)", (".docx", ".docm", ".dotx"), "word:extract_docx"),
    Format("xlsx", "XLSX (Excel)", (".xlsx", ".xlsm", ".xltx"), "excel:extract_xlsx"),
    Format(
        "pptx", "PPTX (PowerPoint)", (".pptx", ".pptm", ".potx", ".ppsx"),
        "powerpoint:extract_pptx",
    ),
    Format("csv", "CSV", (".csv",), "delimited:extract_delimited", takes_kind=True),
    Format("tsv", "TSV", (".tsv", ".tab"), "delimited:extract_delimited", takes_kind=True),
    Format("json", "JSON", (".json", ".geojson"), "jsondoc:extract_json"),
    Format("html", "HTML", (".html", ".htm", ".xhtml"), "webpage:extract_html"),
    Format(
        "markdown", "Markdown", (".md", ".markdown", ".mdx", ".rmd", ".qmd"),
        "plaintext:extract_plain", takes_kind=True,
    ),
    Format("text", "text", (), "plaintext:extract_plain", takes_kind=True),
    Format("code", "source code", (), "plaintext:extract_plain", takes_kind=True),
    Format("ipynb", "Jupyter notebook (.ipynb)", (".ipynb",), "notebook:extract_ipynb"),
)

BY_KIND: dict[str, Format] = {f.kind: f for f in FORMATS}
