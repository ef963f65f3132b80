"""Choosing how to read some bytes: by the file's extension first, then by its content.

The extension is trusted when it is one nbchat reads (a ``.pdf`` that is not a PDF is a
damaged PDF, not a text file). A missing or unknown extension is decided from the
content: the leading "magic" bytes of known formats, then whether it decodes as text.
"""

from __future__ import annotations

import io
import os
import zipfile

from . import problems
from .catalog import FORMATS
from .charset import decode_text

__all__ = ["kind_from_name", "choose_kind", "extension_of", "office_kind", "LEGACY_OFFICE"]

_BY_EXTENSION: dict[str, str] = {ext: f.kind for f in FORMATS for ext in f.extensions}

_PROSE_EXTENSIONS = {
    ".txt", ".text", ".log", ".rst", ".adoc", ".org", ".tex", ".bib", ".srt", ".vtt",
    ".me", ".nfo", ".out", ".err",
}

_CODE_EXTENSIONS = {
    # general-purpose and data-science languages
    ".py", ".pyi", ".pyx", ".pxd", ".r", ".jl", ".sql", ".js", ".mjs", ".cjs", ".jsx",
    ".ts", ".tsx", ".c", ".h", ".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".cu",
    ".cuh", ".cs", ".java", ".kt", ".kts", ".scala", ".sc", ".go", ".rs", ".rb", ".php",
    ".pl", ".pm", ".lua", ".swift", ".m", ".mm", ".dart", ".f", ".f90", ".f95", ".for",
    ".hs", ".ml", ".mli", ".fs", ".fsx", ".clj", ".cljs", ".ex", ".exs", ".erl", ".elm",
    ".nim", ".zig", ".v", ".sv", ".vhd", ".vhdl", ".sas", ".do", ".ado", ".stan",
    ".groovy", ".gradle", ".proto", ".graphql", ".gql", ".sol", ".asm", ".s",
    # shells and build files
    ".sh", ".bash", ".zsh", ".fish", ".ps1", ".psm1", ".bat", ".cmd", ".mk", ".cmake",
    ".make", ".dockerfile", ".nix", ".tf", ".hcl",
    # configuration and markup
    ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties", ".xml",
    ".xsd", ".xsl", ".svg", ".css", ".scss", ".sass", ".less", ".vue", ".svelte",
    ".jsonl", ".ndjson", ".json5", ".jsonc", ".lock", ".diff", ".patch", ".csl",
    ".gitignore", ".gitattributes", ".editorconfig", ".dockerignore", ".pth",
}

_CODE_FILENAMES = {
    "makefile", "dockerfile", "containerfile", "jenkinsfile", "vagrantfile", "gemfile",
    "rakefile", "procfile", "justfile", "snakefile",
}
_PROSE_FILENAMES = {"license", "readme", "changelog", "authors", "notice", "copying"}

#: Old binary Office formats nbchat cannot read, with the format to save them as.
LEGACY_OFFICE = {".doc": "DOCX", ".xls": "XLSX", ".ppt": "PPTX", ".rtf": "DOCX"}

# Leading bytes of common binary formats, to name what an unsupported file looks like.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg media file"),
    (b"fLaC", "a FLAC audio file"),
    (b"{\\rtf", "an RTF document"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"ARROW1", "an Arrow file"),
    (b"\x80\x04\x95", "a Python pickle"),
)

_SNIFF_BYTES = 64 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def extension_of(name: str) -> str:
    """The lower-case extension of the last part of ``name`` (``".pdf"``), or ``""``.

    A dotfile such as ``.gitignore`` counts as its own extension.
    """
    base = os.path.basename(name.replace("\\", "/")).lower()
    _, ext = os.path.splitext(base)
    if not ext and base.startswith(".") and len(base) > 1:
        return base
    return ext


def kind_from_name(name: str) -> str | None:
    """The kind promised by the name's extension, or ``None`` if it promises nothing."""
    ext = extension_of(name)
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    if ext in _PROSE_EXTENSIONS:
        return "text"
    if ext in _CODE_EXTENSIONS:
        return "code"
    base = os.path.basename(name.replace("\\", "/")).lower()
    if base in _CODE_FILENAMES:
        return "code"
    if base in _PROSE_FILENAMES:
        return "text"
    return None


def office_kind(data: bytes) -> str | None:
    """Which Office Open XML format a zip holds, by its main part."""
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return None


def check_ole(data: bytes, name: str, kind: str | None) -> None:
    """Refuse an OLE compound file: an encrypted Office file or an old .doc/.xls/.ppt."""
    if not data.startswith(_OLE_MAGIC):
        return
    label_kind = kind if kind in ("docx", "xlsx", "pptx") else "Office"
    if _ENCRYPTED_PACKAGE in data:
        raise problems.password_protected(name, label_kind)
    raise problems.unsupported(
        name,
        "an old binary Office file (.doc, .xls or .ppt); open it and save it as "
        "DOCX, XLSX or PPTX",
    )


def _sniff(data: bytes, name: str) -> str:
    """The kind of content with no (or an unknown) extension; raises when unsupported."""
    if data.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    check_ole(data, name, None)
    if data.startswith(b"PK\x03\x04"):
        office = office_kind(data)
        if office:
            return office
        raise problems.unsupported(name, "a zip archive; unpack it and attach the files inside")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise problems.unsupported(name, what)
    sample = data[:_SNIFF_BYTES]
    if len(data) > _SNIFF_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]  # never cut a UTF-8 sequence
    decoded = decode_text(sample, strict=True)
    if decoded is None:
        raise problems.unsupported(name, "binary data")
    head = decoded.text.lstrip()[:512].lower()
    if head.startswith("{") and '"nbformat"' in decoded.text and '"cells"' in decoded.text:
        return "ipynb"
    if head.startswith(("<!doctype html", "<html")):
        return "html"
    return "text"


def choose_kind(data: bytes, name: str) -> str:
    """The kind to extract ``data`` as, or an :class:`AttachmentError` when none fits."""
    ext = extension_of(name)
    if ext in LEGACY_OFFICE and not data.startswith(b"PK\x03\x04"):
        if data.startswith(_OLE_MAGIC) and _ENCRYPTED_PACKAGE in data:
            raise problems.password_protected(name, "Office")
        raise problems.unsupported(
            name,
            f"an old {ext} file; open it and save it as {LEGACY_OFFICE[ext]}",
        )
    kind = kind_from_name(name)
    if kind is None:
        return _sniff(data, name)
    if kind in ("docx", "xlsx", "pptx"):
        check_ole(data, name, kind)
    elif kind != "pdf":
        # A PDF or Office file saved under a text extension is read for what it is.
        if data.startswith(b"%PDF-"):
            return "pdf"
        if data.startswith(b"PK\x03\x04"):
            return office_kind(data) or kind
    return kind

