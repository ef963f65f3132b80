"""Turning an attached file into text for the model: real extraction, never lossy decoding.

``read_path`` reads a file from disk; ``extract_bytes`` turns its bytes into an
:class:`Extracted` text; ``stat_key`` gives the cache key of a path. Every failure is an
:class:`~nbchat.core.errors.AttachmentError` naming the file and what to do::

    read_path       not found (cloud placeholders), a directory, permission denied,
                    over the size limit
    extract_bytes   empty, unsupported format, corrupted (or not really that format),
                    password-protected, a PDF without a text layer, an Office file
                    that would unpack past the zip-bomb guard

Exceptions raised inside a parsing library are translated into the "corrupted" error at
one place, :func:`extract_bytes`, and chained with ``from`` for whoever debugs it.
The formats themselves live in :mod:`nbchat.core.extractors`, one module each.
"""

from __future__ import annotations

from collections.abc import Callable

from nbchat.core.errors import AttachmentError

from .extractors import problems
from .extractors.catalog import BY_KIND
from .extractors.files import read_path, stat_key
from .extractors.formats import choose_kind, office_kind
from .extractors.record import KINDS, Extracted
from .extractors.zipguard import check_zip

__all__ = [
    "EXTRACTOR_VERSION",
    "Extracted",
    "KINDS",
    "DEFAULT_MAX_INFLATED_BYTES",
    "read_path",
    "stat_key",
    "extract_bytes",
]

#: Part of every extraction cache key: bump it whenever any extractor's output changes.
EXTRACTOR_VERSION = "4"

DEFAULT_MAX_INFLATED_BYTES = 512 * 1024 * 1024

_OFFICE_MAIN_PART = {
    "docx": "word/document.xml",
    "xlsx": "xl/workbook.xml",
    "pptx": "ppt/presentation.xml",
}


def extract_bytes(
    data: bytes, name: str, *, max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES
) -> Extracted:
    """The text of the file ``name`` whose content is ``data``.

    The format comes from the extension of ``name``, or from the content when the
    extension is missing or unknown. ``max_inflated_bytes`` bounds what an Office
    file (a zip) may unpack to.
    """
    if not data:
        raise problems.empty(name)
    kind = choose_kind(data, name)
    if kind in _OFFICE_MAIN_PART:
        check_zip(data, name, kind, max_inflated_bytes=max_inflated_bytes)
        actual = office_kind(data)
        if actual is None:
            raise problems.corrupted(
                name, kind, f"its main part {_OFFICE_MAIN_PART[kind]} is missing"
            )
        kind = actual  # a workbook named .docx is still read as a workbook
    try:
        extracted = _extract_as(kind, data, name)
    except AttachmentError:
        raise
    except MemoryError as error:
        raise AttachmentError(
            name,
            "is too large to extract in the memory available.",
            "Attach a smaller file or an excerpt of it.",
        ) from error
    except Exception as error:  # the one boundary for every parsing library
        raise problems.corrupted(name, kind) from error
    if not extracted.text.strip():
        raise problems.empty(name)
    return extracted


def _extract_as(kind: str, data: bytes, name: str) -> Extracted:
    """Run the extractor of ``kind`` (:data:`~nbchat.core.extractors.catalog.FORMATS`);
    each imports its library only when called."""
    import importlib

    found = BY_KIND.get(kind, BY_KIND["text"])
    module_name, function_name = found.extractor.split(":")
    module = importlib.import_module(f"{__package__}.extractors.{module_name}")
    extract: Callable[..., Extracted] = getattr(module, function_name)
    return extract(data, name, kind) if found.takes_kind else extract(data, name)
