"""Jupyter notebooks (.ipynb): markdown, code and text outputs, in cell order.

Code is fenced with the notebook's language. Outputs keep their text (streams,
``text/plain`` results, errors as ``name: value`` without the coloured traceback);
images and widgets are named, not inlined; a huge output is cut with a visible note.
Notebook format 4 and the older format 3 (cells inside ``worksheets``) are read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import problems
from .plaintext import decode_or_refuse
from .record import Extracted, join_sections

__all__ = ["extract_ipynb", "MAX_OUTPUT_CHARS"]

#: Characters of one output kept before it is cut.
MAX_OUTPUT_CHARS = 20_000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")
_TEXT_MIMES = ("text/plain", "text/markdown", "text/latex")
_IMAGE_PREFIX = "image/"
_V3_MIMES = {
    "text": "text/plain",
    "latex": "text/latex",
    "html": "text/html",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
}


def _joined(value: Any) -> str:
    """Notebook strings are stored either whole or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return "" if value is None else str(value)


def _fence(text: str, language: str = "") -> str:
    """``text`` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def _clean_stream(text: str) -> str:
    """Strip colour codes; keep only what a carriage return left visible on each line."""
    text = _ANSI.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return text


def _cut(text: str, notes: list[str], cell_number: int) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    notes.append(f"an output of cell {cell_number} was cut to {MAX_OUTPUT_CHARS:,} characters")
    return (
        text[:MAX_OUTPUT_CHARS]
        + f"\n[output cut: first {MAX_OUTPUT_CHARS:,} of {len(text):,} characters]"
    )


def _output_text(output: dict[str, Any], counts: dict[str, int]) -> str:
    """The text of one output, or a bracketed note for what is not text."""
    output_type = output.get("output_type", "")
    if output_type == "stream":
        return _clean_stream(_joined(output.get("text")))
    if output_type in ("error", "pyerr"):
        ename = _ANSI.sub("", str(output.get("ename", "Error")))
        evalue = _ANSI.sub("", str(output.get("evalue", "")))
        return f"{ename}: {evalue}" if evalue else ename
    if output_type in ("execute_result", "display_data", "pyout"):
        bundle = output.get("data")
        if not isinstance(bundle, dict):  # format 3 keeps the data beside the type
            bundle = {_V3_MIMES[key]: value for key, value in output.items() if key in _V3_MIMES}
        images = [mime for mime in bundle if str(mime).startswith(_IMAGE_PREFIX)]
        if images:  # a figure's text/plain is only "<Figure size 640x480 ...>"
            counts["images"] += 1
            return f"[image output: {images[0]}]"
        for mime in _TEXT_MIMES:
            if bundle.get(mime) is not None:
                return _clean_stream(_joined(bundle[mime]))
        if "text/html" in bundle:
            from .webpage import html_to_text

            return html_to_text(_joined(bundle["text/html"]))
        kinds = ", ".join(str(mime) for mime in bundle) or "no data"
        counts["other"] += 1
        return f"[output not shown: {kinds}]"
    return ""


def _cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(notebook.get("cells"), list):
        return [cell for cell in notebook["cells"] if isinstance(cell, dict)]
    worksheets = notebook.get("worksheets")
    if isinstance(worksheets, list):
        return [
            cell
            for sheet in worksheets
            if isinstance(sheet, dict)
            for cell in sheet.get("cells", [])
            if isinstance(cell, dict)
        ]
    raise ValueError("no cells")


def _language(notebook: dict[str, Any]) -> str:
    """The code language from the metadata (``language_info``, then the kernel spec)."""
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        return "python"
    info, spec = metadata.get("language_info"), metadata.get("kernelspec")
    candidates = (
        info.get("name") if isinstance(info, dict) else None,
        spec.get("language") if isinstance(spec, dict) else None,
    )
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip().lower()
    return "python"


def extract_ipynb(data: bytes, name: str) -> Extracted:
    """Every cell in order: markdown as is, code fenced, then its outputs."""
    text, notes_prefix = decode_or_refuse(data, name, "ipynb")
    if not text.strip():
        return Extracted(text="", kind="ipynb", notes=notes_prefix)
    try:
        notebook = json.loads(text)
        if not isinstance(notebook, dict):
            raise ValueError("not an object")
        cells = _cells(notebook)
    except json.JSONDecodeError as error:
        raise problems.corrupted(
            name, "ipynb", f"invalid JSON at line {error.lineno}, column {error.colno}"
        ) from error
    except ValueError as error:
        raise problems.corrupted(name, "ipynb", "it has no notebook cells") from error
    language = _language(notebook)
    notes: list[str] = list(notes_prefix)
    counts = {"images": 0, "other": 0}
    located: list[tuple[str, int, str, str]] = []
    for number, cell in enumerate(cells, start=1):
        blocks: list[str] = []
        cell_type = cell.get("cell_type")
        source = _joined(cell.get("source", cell.get("input")))
        if cell_type == "code":
            if source.strip():
                blocks.append(_fence(source, language))
            outputs = cell.get("outputs") or []
            texts = [_output_text(o, counts) for o in outputs if isinstance(o, dict)]
            output = "\n".join(t.rstrip("\n") for t in texts if t.strip())
            if output:
                blocks.append("Output:\n" + _fence(_cut(output, notes, number), "text"))
        elif cell_type == "heading":  # format 3
            level = int(cell.get("level", 1) or 1)
            blocks.append(f"{'#' * min(level, 6)} {source.strip()}")
        elif source.strip():  # markdown and raw cells
            blocks.append(source.strip("\n"))
        if blocks:
            located.append(("cell", number, "", "\n\n".join(blocks)))
    if counts["images"]:
        notes.append(f"{_count(counts['images'], 'image output')} not included")
    if counts["other"]:
        other = _count(counts["other"], "rich output")
        notes.append(f"{other} (widgets and the like) not included")
    joined, sections = join_sections(located)
    return Extracted(text=joined, kind="ipynb", notes=tuple(notes), sections=sections)


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"
