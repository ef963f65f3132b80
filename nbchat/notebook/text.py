"""Small text helpers shared by the ``%chat`` subcommands: tables, clipping, sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbchat.core.store import Session

__all__ = [
    "table",
    "grid",
    "clip",
    "size_text",
    "short_size_text",
    "turns_text",
    "title_text",
    "status_mark",
]


def table(rows: Sequence[tuple[str, str]], indent: str = "") -> str:
    """Two columns, the labels padded to the longest one."""
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{indent}{label:<{width}}  {value}" for label, value in rows)


def grid(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells in aligned columns (the first row is usually the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size_text(size_bytes: int) -> str:
    """A size for people: ``512 bytes``, ``1.5 KB``, ``2.0 MB``."""
    value = float(size_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size_bytes} bytes"


def short_size_text(size_bytes: int) -> str:
    """A size for a small label (the panel's attachment chips): ``512 B``, ``1.5 KB``."""
    if size_bytes < 1024:
        return f"{size_bytes} B"
    if size_bytes < 1024 * 1024:
        return f"{size_bytes / 1024:.1f} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"


def turns_text(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"


def title_text(session: "Session") -> str:
    """The session's title in quotes after a space, or '' when it has none."""
    return f" “{session.title}”" if session.title else ""


def status_mark(status: str) -> str:
    """How a stored message's status shows in a list ('' for a complete one)."""
    return {"partial": "partial", "error": "failed"}.get(status, "")
