"""A cell's failure as the model is asked about it: the exception, its traceback as
plain text, and the cell's source.

The notebook layer records failures (:mod:`nbchat.notebook.cells`); this module only
shapes them into the text that is attached, with anything shaped like a key masked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nbchat.core.cellblock import format_cell
from nbchat.core.errors import redact

__all__ = ["EXPLAIN_ERROR_QUESTION", "CellFailure", "strip_ansi", "failure_text"]

EXPLAIN_ERROR_QUESTION = "Explain this error and how to fix it."

# CSI sequences (colours, cursor moves) and OSC sequences (hyperlinks) of terminals.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


@dataclass(frozen=True)
class CellFailure:
    """The exception a cell ended with.

    ``number`` is the cell's execution count (``None`` when the exception came from
    before nbchat was loaded and no cell of it is known); ``traceback`` is plain text.
    """

    number: int | None
    type_name: str
    message: str
    traceback: str
    source: str

    @property
    def summary(self) -> str:
        """``ValueError: bad value``, on one line."""
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.type_name}: {first}" if first else self.type_name

    @property
    def name(self) -> str:
        """What the attachment is called: ``error In[5]``."""
        return f"error In[{self.number}]" if self.number is not None else "last error"


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


def failure_text(failure: CellFailure, secrets: Sequence[str | None] = ()) -> str:
    """The attachment: the exception, the traceback, then the cell (as ``--nb`` shows
    cells), with the given secrets and anything shaped like an API key masked."""
    parts = [f"Exception: {failure.type_name}: {failure.message}".rstrip()]
    if failure.traceback.strip():
        parts.append("Traceback:\n" + strip_ansi(failure.traceback).strip("\n"))
    if failure.number is not None and failure.source.strip():
        parts.append(format_cell(failure.number, failure.source))
    elif failure.source.strip():
        parts.append("Cell:\n" + failure.source.rstrip())
    else:
        parts.append("(The failing cell's source is not known: the error happened before "
                     "nbchat was loaded.)")
    return redact("\n\n".join(parts), *secrets)
