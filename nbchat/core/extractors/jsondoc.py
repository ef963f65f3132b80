"""JSON, validated and pretty-printed with two-space indents."""

from __future__ import annotations

import json

from . import problems
from .plaintext import decode_or_refuse
from .record import Extracted

__all__ = ["extract_json"]


def extract_json(data: bytes, name: str) -> Extracted:
    """The document re-indented, so minified JSON reads as well as hand-written JSON.

    Invalid JSON is refused with the line and column of the first error, rather than
    sent as text the model would have to guess about.
    """
    text, notes = decode_or_refuse(data, name, "json")
    if not text.strip():
        return Extracted(text="", kind="json", notes=notes)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise problems.corrupted(
            name,
            "json",
            f"line {error.lineno}, column {error.colno}: {error.msg}",
            "Fix the JSON at that spot, or rename the file to .txt to attach it "
            "as plain text.",
        ) from error
    pretty = json.dumps(document, indent=2, ensure_ascii=False)
    return Extracted(text=pretty, kind="json", notes=notes)
