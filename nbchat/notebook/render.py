"""Showing a turn in a cell's output: the streaming answer, its footer, problems, dry runs.

Three ways to show a stream, picked from the shell's display publisher:

- ``live`` (Jupyter, nbclient): one display, first a placeholder, then Markdown updated
  at most every ``interval_s`` (and when the text grew by ``REDRAW_GROWTH``), and once
  at the end with its ``text/plain`` twin;
- ``final`` (``%%capture`` and other capturing publishers, which cannot update): one
  display once the answer is complete;
- ``print`` (terminal IPython): the text is printed as it arrives.

While a long prompt is read, ``live`` and ``print`` show "reading the prompt: N / M
tokens" in the answer's place; the first piece of text replaces it.

The footer is a second, small output under the answer. Nothing here decides anything
about the turn; :mod:`nbchat.notebook.magics` drives it.
"""

from __future__ import annotations

import html
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbchat.core.turn import PreparedTurn

__all__ = [
    "LIVE",
    "FINAL",
    "PRINT",
    "output_mode",
    "AnswerView",
    "DryRunView",
    "answer_bundle",
    "progress_bundle",
    "footer_bundle",
    "error_bundle",
    "close_open_fence",
]

LIVE, FINAL, PRINT = "live", "final", "print"
PLACEHOLDER = {"text/markdown": "_waiting for the model…_", "text/plain": "…"}
EMPTY = {"text/plain": ""}

_FOOTER_STYLE = "color:#6e7781;font-size:0.85em;margin-top:0.25em"
_PROBLEM_STYLE = (
    "border-left:3px solid #cf222e;background:rgba(207,34,46,0.08);"
    "padding:0.35em 0.7em;margin:0.3em 0;white-space:pre-wrap"
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def output_mode(shell: Any) -> str:
    """How this shell can show a stream: ``live``, ``final`` or ``print``."""
    from IPython.core.displaypub import CapturingDisplayPublisher, DisplayPublisher

    publisher = getattr(shell, "display_pub", None)
    if publisher is None or type(publisher) is DisplayPublisher:
        return PRINT  # the terminal's publisher prints each display: no updates
    if isinstance(publisher, CapturingDisplayPublisher):
        return FINAL
    return LIVE


def _publish(
    shell: Any, data: dict[str, str], display_id: str | None = None, *, update: bool = False
) -> None:
    kwargs: dict[str, Any] = {}
    if display_id is not None:
        kwargs["transient"] = {"display_id": display_id}
    if update:
        kwargs["update"] = True
    shell.display_pub.publish(data=data, metadata={}, **kwargs)


def close_open_fence(text: str) -> str:
    """``text`` with an unfinished code fence closed, so a half answer renders sanely."""
    opened: str | None = None
    for match in _FENCE.finditer(text):
        marker = match.group(1)
        if opened is None:
            opened = marker
        elif marker[0] == opened[0] and len(marker) >= len(opened):
            opened = None
    if opened is None:
        return text
    return text + ("\n" if not text.endswith("\n") else "") + opened


def answer_bundle(text: str, *, streaming: bool = False) -> dict[str, str]:
    """The answer as Markdown, plus the same text as ``text/plain`` once it is complete
    (a twin on every redraw would double the bytes of a stream for no reader)."""
    if streaming:
        return {"text/markdown": escape_raw_html(close_open_fence(text))}
    return {"text/markdown": escape_raw_html(text), "text/plain": text}


def progress_bundle(line: str) -> dict[str, str]:
    """How far the model has read the prompt, in the answer's place until it answers."""
    return {"text/markdown": f"_{html.escape(line)}…_", "text/plain": f"{line}…"}


def footer_bundle(line: str, problem: str | None = None) -> dict[str, str]:
    """The small grey footer line, with a problem box above it when the answer fell short."""
    parts = []
    plain = []
    if problem:
        parts.append(_problem_html(problem))
        plain.append(f"⚠ {problem}")
    if line:
        parts.append(
            f'<div class="nbchat-footer" style="{_FOOTER_STYLE}">{html.escape(line)}</div>'
        )
        plain.append(line)
    return {"text/html": "".join(parts), "text/plain": "\n".join(plain)}


def _problem_html(message: str) -> str:
    return f'<div class="nbchat-problem" style="{_PROBLEM_STYLE}">⚠ {html.escape(message)}</div>'


def error_bundle(message: str) -> dict[str, str]:
    """A short styled message, no traceback: what went wrong and what to do."""
    return {
        "text/html": _problem_html(message),
        "text/plain": f"⚠ {message}",
    }


# Each redraw resends the whole answer, so a redraw waits until the text has grown by
# this share since the last one: the bytes of a stream stay a bounded multiple of the
# answer's (about (1 + g) / g), however long it runs. Short answers still redraw at
# every interval; a long one redraws a little less often as it grows.
REDRAW_GROWTH = 0.06


class AnswerView:
    """The output of one streaming answer (see the module docstring for the modes)."""

    def __init__(
        self,
        shell: Any,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        mode: str | None = None,
    ) -> None:
        self.shell = shell
        self.interval_s = max(0.0, interval_s)
        self.mode = mode or output_mode(shell)
        self.display_id: str | None = None
        self.updates = 0
        self._clock = clock
        self._parts: list[str] = []
        self._last_draw = 0.0
        self._length = 0
        self._drawn_length = 0
        self._printed_any = False
        self._progress_shown = ""

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def start(self) -> None:
        """Show that an answer is on its way (live mode)."""
        if self.mode == LIVE:
            self.display_id = uuid.uuid4().hex
            _publish(self.shell, dict(PLACEHOLDER), self.display_id)
            self._last_draw = self._clock()

    def progress(self, line: str) -> None:
        """Show how far a long prompt has been read (until the first piece of text)."""
        if self._parts or not line:
            return
        if self.mode == LIVE and self.display_id is not None:
            _publish(self.shell, progress_bundle(line), self.display_id, update=True)
            self.updates += 1
        elif self.mode == PRINT:
            sys.stdout.write(f"\r{line}…")
            sys.stdout.flush()
        else:
            return
        self._progress_shown = line

    def add(self, text: str) -> None:
        """One more piece of the answer."""
        if not text:
            return
        self._parts.append(text)
        self._length += len(text)
        if self.mode == PRINT:
            if self._progress_shown:
                sys.stdout.write("\r" + " " * (len(self._progress_shown) + 1) + "\r")
                self._progress_shown = ""
            sys.stdout.write(text)
            sys.stdout.flush()
            self._printed_any = True
        elif self.mode == LIVE and (
            self._progress_shown  # the first text replaces the progress line at once
            or (
                self._clock() - self._last_draw >= self.interval_s
                and self._length >= self._drawn_length * (1 + REDRAW_GROWTH)
            )
        ):
            self._progress_shown = ""
            self._draw(streaming=True)

    def finish(self) -> None:
        """Draw the whole answer once more (or clear the placeholder when there is none)."""
        text = self.text
        if self.mode == LIVE:
            if text:
                self._draw(streaming=False)
            else:
                self.discard()
        elif self.mode == FINAL and text:
            _publish(self.shell, answer_bundle(text))
        elif self.mode == PRINT and self._printed_any and not text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()

    def discard(self) -> None:
        """Remove the placeholder: the turn ends with no answer to show."""
        if self.mode == LIVE and self.display_id is not None:
            _publish(self.shell, dict(EMPTY), self.display_id, update=True)
            self.updates += 1
        elif self.mode == PRINT and self._printed_any:
            sys.stdout.write("\n")
            sys.stdout.flush()

    def footer(self, line: str, problem: str | None = None) -> None:
        """The footer under the answer, with an optional problem above it."""
        if not line and not problem:
            return
        if self.mode == PRINT:
            if problem:
                print(f"⚠ {problem}")
            if line:
                print(line)
            sys.stdout.flush()
        else:
            _publish(self.shell, footer_bundle(line, problem))

    def _draw(self, *, streaming: bool) -> None:
        bundle = answer_bundle(self.text, streaming=streaming)
        _publish(self.shell, bundle, self.display_id, update=True)
        self.updates += 1
        self._last_draw = self._clock()
        self._drawn_length = self._length


def _fence_for(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


class DryRunView:
    """What ``%%chat --dry-run`` returns: the exact messages and the token report.

    It shows itself as Markdown (and text); ``.messages``, ``.report`` and ``.prepared``
    let a notebook check the figures.
    """

    def __init__(self, prepared: "PreparedTurn", notices: Sequence[str] = ()) -> None:
        self.prepared = prepared
        self.messages = prepared.messages
        self.report = prepared.report
        # Notices beyond the report's own (which its table already shows).
        extra = [n for n in prepared.notices if n not in prepared.report.notices]
        self.notices = tuple(dict.fromkeys([*extra, *notices]))

    def _head(self) -> str:
        return "Dry run: nothing was sent and nothing was stored."

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/markdown": self.as_markdown(), "text/plain": self.as_text()}

    def __repr__(self) -> str:
        return self.as_text()

    def as_text(self) -> str:
        lines = [self._head(), "", "Token report:", self.report.as_text()]
        lines += [f"note: {notice}" for notice in self.notices]
        lines += ["", f"Messages ({len(self.messages)}):"]
        for message in self.messages:
            lines += [f"── {message['role']} ──", message["content"]]
        return "\n".join(lines)

    def as_markdown(self) -> str:
        report = self.report.as_text()
        fence = _fence_for(report)
        lines = [f"**{self._head()}**", "", "Token report:", "", f"{fence}text", report, fence]
        lines += [f"- {notice}" for notice in self.notices]
        lines += ["", f"Messages ({len(self.messages)}):"]
        for message in self.messages:
            content = message["content"]
            fence = _fence_for(content)
            lines += ["", f"**{message['role']}**", "", f"{fence}text", content, fence]
        return "\n".join(lines)


_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TICKS = re.compile(r"`+")

def escape_raw_html(markdown: str) -> str:
    """``markdown`` with raw HTML turned into text: ``<`` outside code becomes ``&lt;``.

    Front ends render raw HTML inside Markdown (sanitised, but still markup: a ``<b>``
    is bold, an ``<img>`` loads). Model output is untrusted, so its tags are shown as
    typed. Fenced code blocks and inline code spans are left alone: they show ``<`` as
    it is already.
    """
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        match = _FENCE_LINE.match(line)
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
            out.append(line)
        elif match and not (match.group(1)[0] == "`" and "`" in line[match.end():]):
            fence = match.group(1)
            out.append(line)
        else:
            out.append(_escape_outside_spans(line))
    return "".join(out)


def _escape_outside_spans(line: str) -> str:
    pieces: list[str] = []
    position = 0
    while True:
        opening = _TICKS.search(line, position)
        if opening is None:
            break
        run = opening.group(0)
        closing = re.compile(rf"(?<!`){run}(?!`)").search(line, opening.end())
        if closing is None:
            # No closing run: the backticks are literal text.
            pieces.append(line[position:opening.end()].replace("<", "&lt;"))
            position = opening.end()
            continue
        pieces.append(line[position:opening.start()].replace("<", "&lt;"))
        pieces.append(line[opening.start():closing.end()])
        position = closing.end()
    pieces.append(line[position:].replace("<", "&lt;"))
    return "".join(pieces)
