"""The kernel's cells as nbchat attaches them: ``--nb``, ``--cell N`` and ``--error``.

What IPython itself keeps of each cell (IPython 9 with ipykernel 7, checked on real
kernels):

- ``In[N]``: the source (``history_manager.input_hist_raw``), always;
- ``Out[N]``, printed text and stderr (``history_manager.outputs``: ``execute_result``,
  ``out_stream``, ``err_stream``); on IPython 8 only ``Out[N]``'s repr;
- displays (``display()``, plots, rich reprs, nbchat's own answers): kept by IPython's
  terminal publisher, but **not** by ipykernel's unless ``store_display_history`` is on.
  :class:`CellRecorder` therefore registers a hook on the kernel's publisher at
  ``%load_ext`` that files each display under its cell (updates replace the display
  they update). Displays from before ``%load_ext``, from other threads, and
  ``clear_output`` are not seen;
- errors: IPython 9 keeps each failing cell's formatted traceback
  (``history_manager.exceptions``); IPython 8 only the last exception (``sys.last_value``).
  :class:`CellRecorder` records every failing cell from ``%load_ext`` on through a
  ``post_run_cell`` hook (not a global exception hook), so the chat panel learns of a
  new error at once. nbchat's own usage errors (a mistyped ``%chat`` option) are not
  recorded.

Images are attached as an ``[image output]`` placeholder, never as their bytes.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbchat.core.cellblock import IMAGE_PLACEHOLDER, OUTPUT_CHARS, format_cell
from nbchat.core.errors import AttachmentError, NbChatError, redact
from nbchat.core.failure import CellFailure, failure_text, strip_ansi

if TYPE_CHECKING:
    from nbchat.core.attachments import AttachmentSpec

__all__ = [
    "recorder_for",
    "CELL_LABEL",
    "ERROR_LABEL",
    "NO_ERROR_YET",
    "CellRecorder",
    "notebook_text",
    "cell_numbers",
    "cell_specs",
    "find_failure",
    "failure_spec",
    "output_text",
]

CELL_LABEL = "cell"
NOTEBOOK_LABEL = "notebook"
ERROR_LABEL = "error"
NO_ERROR_YET = "No error in this kernel yet: there is nothing to explain."

log = logging.getLogger("nbchat.cells")
_DEFAULT_REPR = re.compile(r"^<[\w.]+ object(?: at 0x[0-9a-f]+)?>$")
_TEXT_FORMATS = ("text/plain", "text/markdown")
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_ATTACHED: dict[int, "CellRecorder"] = {}  # by id(shell): the recorder listening there


def recorder_for(shell: Any) -> "CellRecorder | None":
    """The recorder attached to this shell (``None`` when nbchat is not loaded there)."""
    recorder = _ATTACHED.get(id(shell))
    return recorder if recorder is not None and recorder.shell is shell else None


class CellRecorder:
    """What nbchat learns about the cells run from ``%load_ext`` on (see the module
    docstring): failing cells, and displays the kernel's publisher does not keep.

    ``on_failure`` callables are called with each new :class:`CellFailure` (the chat
    panel uses this to offer "Explain last error").
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.failures: list[CellFailure] = []  # in the order the cells ran
        self.on_failure: list[Callable[[CellFailure], None]] = []
        self.first_cell = max(1, int(getattr(shell, "execution_count", 1) or 1) - 1)
        self._displays: dict[str, tuple[int, int]] = {}  # display id -> (cell, index)
        self._publisher: Any = None

    def attach(self) -> None:
        _ATTACHED[id(self.shell)] = self
        self.shell.events.register("post_run_cell", self.post_run_cell)
        publisher = getattr(self.shell, "display_pub", None)
        keeps_displays = getattr(publisher, "store_display_history", True)
        if publisher is not None and hasattr(publisher, "register_hook") and not keeps_displays:
            publisher.register_hook(self._on_display)
            self._publisher = publisher

    def detach(self) -> None:
        if _ATTACHED.get(id(self.shell)) is self:
            del _ATTACHED[id(self.shell)]
        try:
            self.shell.events.unregister("post_run_cell", self.post_run_cell)
        except ValueError:
            pass  # already gone (the shell was reset)
        if self._publisher is not None:
            self._publisher.unregister_hook(self._on_display)
            self._publisher = None
        self.on_failure.clear()

    @property
    def last_failure(self) -> CellFailure | None:
        return self.failures[-1] if self.failures else None

    def post_run_cell(self, result: Any) -> None:
        """Record the cell's exception, if it raised one that is not nbchat's own."""
        if result is None or result.execution_count is None:
            return
        error = result.error_in_exec or result.error_before_exec
        if error is None or _is_nbchat_usage_error(error):
            return
        info = getattr(result, "info", None)
        # A cell run without history (nbval, tools) has no number of its own.
        number = result.execution_count if getattr(info, "store_history", True) else None
        source = getattr(info, "raw_cell", "") or _input(self.shell, result.execution_count)
        failure = _failure(self.shell, number, error, source)
        self.failures.append(failure)
        for listener in list(self.on_failure):
            try:
                listener(failure)
            except Exception:  # noqa: BLE001 - a closed panel must not fail the cell
                log.exception("nbchat: a listener of failing cells failed")

    def _on_display(self, msg: Any) -> Any:
        """The publisher's hook: file the display under its cell, pass it on unchanged."""
        try:
            self._file_display(msg)
        except Exception:  # noqa: BLE001 - recording must never stop a display
            log.exception("nbchat: recording a display failed")
        return msg

    def _file_display(self, msg: Any) -> None:
        kind = (msg.get("header") or {}).get("msg_type") or msg.get("msg_type")
        if kind not in ("display_data", "update_display_data"):
            return
        content = msg.get("content") or {}
        bundle = dict(content.get("data") or {})
        display_id = (content.get("transient") or {}).get("display_id")
        outputs = self.shell.history_manager.outputs
        record = _history_output(bundle)
        if kind == "update_display_data":
            where = self._displays.get(display_id) if display_id else None
            if where is not None and where[1] < len(outputs.get(where[0], ())):
                outputs[where[0]][where[1]] = record
            return
        number = self.shell.execution_count - 1  # the running cell (as IPython files them)
        cell = outputs.setdefault(number, [])
        cell.append(record)
        if display_id:
            self._displays[display_id] = (number, len(cell) - 1)


def _history_output(bundle: dict[str, Any]) -> Any:
    """A display as IPython's history keeps one, its text only: other formats (images,
    HTML, widget views) stay as empty markers, so the record costs no more than its text."""
    from IPython.core.history import HistoryOutput

    slim = {k: (v if k in _TEXT_FORMATS else "") for k, v in bundle.items()}
    return HistoryOutput(output_type="display_data", bundle=slim)


def _is_nbchat_usage_error(error: BaseException) -> bool:
    """A ``UsageError`` raised while an nbchat magic ran (a user's slip, not a bug)."""
    from IPython.core.error import UsageError

    if not isinstance(error, UsageError):
        return False
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("nbchat."):
            return True
        tb = tb.tb_next
    return False


def _failure(shell: Any, number: int | None, error: BaseException, source: str) -> CellFailure:
    stored = getattr(getattr(shell, "history_manager", None), "exceptions", {}) or {}
    found = stored.get(number) if number is not None else None
    if found and found.get("ename") == type(error).__name__:
        lines = found.get("traceback") or []
    else:
        lines = _format_traceback(shell, error)
    text = strip_ansi("\n".join(str(line) for line in lines))
    return CellFailure(number, type(error).__name__, str(error), text, source)


def _format_traceback(shell: Any, error: BaseException) -> list[str]:
    """The traceback as IPython shows it (its cell frames named ``In[N]``)."""
    from IPython.core.error import UsageError

    if isinstance(error, UsageError):
        return []
    if isinstance(error, SyntaxError):
        return traceback.format_exception_only(type(error), error)
    try:
        return list(
            shell.InteractiveTB.structured_traceback(
                type(error), error, error.__traceback__, tb_offset=1
            )
        )
    except Exception:  # noqa: BLE001 - Python's own format is the fallback IPython uses too
        return traceback.format_exception(type(error), error, error.__traceback__)


# -- reading cells ------------------------------------------------------------------------


def _inputs(shell: Any) -> list[str]:
    return list(shell.history_manager.input_hist_raw)


def _input(shell: Any, number: int) -> str:
    inputs = _inputs(shell)
    return inputs[number] if 0 < number < len(inputs) else ""


def output_text(bundle: dict[str, Any]) -> str:
    """The text of one rich output: its ``text/plain`` (else Markdown), and
    ``[image output]`` for an image, whose bytes are never attached."""
    text = bundle.get("text/plain", "") or bundle.get("text/markdown", "")
    if isinstance(text, list):
        text = "".join(text)
    text = str(text)
    if any(str(key).startswith("image/") for key in bundle):
        if not text or _DEFAULT_REPR.match(text.strip()):
            return IMAGE_PLACEHOLDER
        return f"{IMAGE_PLACEHOLDER} {text}"
    return text


def _history_output_text(outputs: Sequence[Any]) -> str:
    """Text of one cell's outputs; repeated updates of one display count once."""
    pieces: list[str] = []
    last_display_keys: tuple[str, ...] | None = None
    for output in outputs:
        kind = getattr(output, "output_type", "")
        bundle = getattr(output, "bundle", {}) or {}
        if kind in ("out_stream", "err_stream"):
            pieces.append("".join(str(part) for part in bundle.get("stream", [])))
            last_display_keys = None
            continue
        text = output_text(bundle)
        keys = tuple(sorted(bundle))
        if kind == "display_data" and keys == last_display_keys and pieces:
            pieces[-1] = text  # a display being updated: keep its last state
        else:
            pieces.append(text)
        last_display_keys = keys if kind == "display_data" else None
    return "\n".join(piece.rstrip("\n") for piece in pieces if piece)


def cell_output(shell: Any, number: int) -> str:
    """The text outputs of cell ``number``: from IPython's output history (IPython 9),
    else ``Out[number]``'s repr."""
    history = shell.history_manager
    outputs = getattr(history, "outputs", None)
    if outputs is not None:
        return _history_output_text(outputs.get(number, ()))
    reprs = getattr(history, "output_hist_reprs", {}) or {}
    return str(reprs.get(number, ""))


def notebook_text(
    shell: Any,
    *,
    running_prompt: str = "",
    secrets: Sequence[str | None] = (),
    max_output_chars: int = OUTPUT_CHARS,
) -> str:
    """The cells run so far in this kernel: inputs and their text outputs, in order.

    Anything shaped like an API key is masked. The running ``%%chat`` cell (recognised
    by its prompt) is left out.
    """
    inputs = _inputs(shell)
    last = len(inputs) - 1
    prompt = running_prompt.strip()
    if last >= 1 and prompt and prompt in inputs[last] and "chat" in inputs[last]:
        last -= 1  # the %%chat cell that is running now
    blocks = [
        format_cell(number, inputs[number], cell_output(shell, number),
                    max_output_chars=max_output_chars)
        for number in range(1, last + 1)
        if inputs[number].strip()
    ]
    return redact("\n\n".join(blocks), *secrets) if blocks else ""


def notebook_spec(
    shell: Any, notebook: str | None, *, running_prompt: str, secrets: Sequence[str | None] = ()
) -> "AttachmentSpec":
    """``--nb``: the cells so far as one attachment, named after the notebook's file."""
    import os

    from nbchat.core.attachments import text_spec

    name = NOTEBOOK_LABEL
    if notebook and notebook.endswith(".ipynb"):
        name = os.path.basename(notebook)
    text = notebook_text(shell, running_prompt=running_prompt, secrets=secrets)
    return text_spec(name, text, label=NOTEBOOK_LABEL)


def cell_numbers(values: Sequence[str]) -> list[int]:
    """``["3", "5-7"]`` -> ``[3, 5, 6, 7]`` (each once, in the order given)."""
    numbers: list[int] = []
    for value in values:
        for part in value.split(","):
            match = _RANGE.match(part)
            if match is None:
                raise NbChatError(
                    f"--cell {value}: give a cell number (In[N]) or a range such as 3-5."
                )
            first = int(match.group(1))
            last = int(match.group(2) or first)
            if first < 1 or last < first:
                raise NbChatError(
                    f"--cell {value}: cell numbers start at 1 and a range goes up (3-5)."
                )
            numbers += [n for n in range(first, last + 1) if n not in numbers]
    return numbers


def cell_specs(
    shell: Any, values: Sequence[str], secrets: Sequence[str | None] = ()
) -> tuple[list["AttachmentSpec"], list[AttachmentError]]:
    """One attachment per cell named by ``--cell`` (``In[N]``, kind ``cell``); every
    number that has not run in this kernel is a failure."""
    from nbchat.core.attachments import text_spec

    inputs = _inputs(shell)
    specs: list["AttachmentSpec"] = []
    failures: list[AttachmentError] = []
    failures_by_cell = {f.number: f for f in known_failures(shell) if f.number is not None}
    for number in cell_numbers(values):
        if number >= len(inputs):
            ran = f"cells 1 to {len(inputs) - 1} have" if len(inputs) > 2 else "no cell has"
            if len(inputs) == 2:
                ran = "only cell 1 has"
            failures.append(
                AttachmentError(
                    f"In[{number}]",
                    f"has not run in this kernel ({ran} run so far).",
                    "Use the number in the brackets left of the cell.",
                )
            )
            continue
        output = cell_output(shell, number)
        failure = failures_by_cell.get(number)
        if failure is not None and failure.summary not in output:
            output = f"{output.rstrip()}\n{failure.summary}".lstrip("\n")  # kernels keep no error output
        text = format_cell(number, inputs[number], output)
        specs.append(text_spec(f"In[{number}]", redact(text, *secrets), label=CELL_LABEL))
    return specs, failures


def known_failures(shell: Any) -> list[CellFailure]:
    """Every failing cell nbchat knows of, oldest first: kept by IPython 9 before
    ``%load_ext``, then recorded."""
    recorder = recorder_for(shell)
    if recorder is None:
        return list(_earlier_failures(shell, sys.maxsize).values())
    return [*_earlier_failures(shell, recorder.first_cell).values(), *recorder.failures]


def find_failure(shell: Any, number: int | None = None) -> CellFailure | None:
    """The failure of cell ``number``, or the kernel's last one; ``None`` when the
    kernel has none. A cell that is known not to have failed is an error that says so."""
    known = known_failures(shell)
    if number is None:
        return known[-1] if known else _last_exception(shell)
    for failure in reversed(known):
        if failure.number == number:
            return failure
    last = _last_exception(shell)
    if last is not None and last.number == number:
        return last
    raise NbChatError(
        f"In[{number}] raised no error that nbchat knows of (it records failing cells "
        "from %load_ext nbchat on). `%chat error` alone explains the last error."
    )


def _earlier_failures(shell: Any, before: int) -> dict[int, CellFailure]:
    """Failing cells before ``%load_ext`` that IPython 9 kept (``exceptions``), usage
    errors (a mistyped magic, shown without a traceback) left out."""
    stored = getattr(shell.history_manager, "exceptions", None) or {}
    found: dict[int, CellFailure] = {}
    for number, details in sorted(stored.items()):
        if number >= before or details.get("ename") == "UsageError":
            continue  # a usage error's origin is unknown here: it may be nbchat's own
        text = strip_ansi("\n".join(str(line) for line in details.get("traceback") or []))
        found[number] = CellFailure(
            number, str(details.get("ename", "")), str(details.get("evalue", "")), text,
            _input(shell, number),
        )
    return found


def _last_exception(shell: Any) -> CellFailure | None:
    """The kernel's last exception (``sys.last_value``), when it is not nbchat's own."""
    error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if error is None or _is_nbchat_usage_error(error):
        return None
    number = _cell_of(shell, error)
    source = _input(shell, number) if number is not None else ""
    return _failure(shell, number, error, source)


def _cell_of(shell: Any, error: BaseException) -> int | None:
    """The cell the exception was raised from: its outermost frame in a cell."""
    name_of = getattr(getattr(shell, "compile", None), "format_code_name", None)
    tb = error.__traceback__
    while tb is not None and name_of is not None:
        named = name_of(tb.tb_frame.f_code.co_filename)
        if named:
            match = re.match(r"In\[(\d+)\]", named[1])
            if match:
                return int(match.group(1))
        tb = tb.tb_next
    return None


def failure_spec(failure: CellFailure, secrets: Sequence[str | None] = ()) -> "AttachmentSpec":
    """The failure as an attachment named ``error In[N]``."""
    from nbchat.core.attachments import text_spec

    return text_spec(failure.name, failure_text(failure, secrets), label=ERROR_LABEL)
