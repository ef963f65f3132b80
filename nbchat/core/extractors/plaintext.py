"""Plain text, Markdown and source code: decoded with a detected charset, kept as is."""

from __future__ import annotations

import os

from . import problems
from .charset import decode_text
from .record import Extracted

__all__ = ["decode_or_refuse", "decoding_notes", "extract_plain"]


def decode_or_refuse(data: bytes, name: str, kind: str) -> tuple[str, tuple[str, ...]]:
    """The text of a file whose name promises text, and notes about its decoding.

    A file with NUL bytes (and no UTF-16/32 byte-order mark) is binary whatever its
    name says, so it is refused as "not really" that kind rather than sent as garbage.
    """
    decoded = decode_text(data)
    if decoded is None:
        extension = os.path.splitext(name)[1] or "its name"
        raise problems.corrupted(
            name,
            kind,
            f"it holds binary data although {extension} promises text",
            "Check that it is the file you meant; if it is another format, give it "
            "that format's extension.",
        )
    return decoded.text, decoding_notes(decoded.replaced_count)


def decoding_notes(replaced_count: int) -> tuple[str, ...]:
    if not replaced_count:
        return ()
    return (
        f"{replaced_count:,} character{'s' if replaced_count != 1 else ''} could not be "
        "decoded and were replaced with \ufffd",
    )


def extract_plain(data: bytes, name: str, kind: str) -> Extracted:
    """The decoded text, byte-order mark removed and line ends made ``\\n``."""
    text, notes = decode_or_refuse(data, name, kind)
    return Extracted(text=text, kind=kind, notes=notes)
