"""Ctrl-C during a turn: honoured once, never lost, never in the middle of a write.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT
(Ctrl-C, a kernel interrupt) arrives. Two places are wrong for a chat turn:

- inside a write to the store: the question would be kept without its bookkeeping, or
  an answer half-stored;
- inside code that swallows it: a finalizer run by the garbage collector (``__del__``,
  a weakref callback: Python only prints "Exception ignored"), or a library's broad
  ``except``. The user's Ctrl-C then vanishes and the answer runs on to its end.

:func:`interrupt_latch` covers a whole turn: SIGINT still raises at once, and is also
remembered until the turn's driver handles it (:func:`interrupt_handled`), so
:func:`raise_if_interrupted`, called at each stage and stream event, raises a swallowed
one again. :func:`deferred_interrupts` covers a write: SIGINT is only remembered there,
and raised once the write is done.

Signals reach the main thread only: off it, or while SIGINT is not handled by Python
(``SIG_IGN``, ``SIG_DFL``), these do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["interrupt_latch", "deferred_interrupts", "raise_if_interrupted", "interrupt_handled"]


class _Latch:
    """The state of one latched turn."""

    def __init__(self, previous: Callable[[int, FrameType | None], Any]) -> None:
        self.previous = previous  # the handler to deliver an interrupt through
        self.pending = False  # an interrupt arrived that the driver has not handled yet
        self.arrivals = 0  # interrupts so far
        self.deferring = 0  # depth of the deferred sections open now

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True
        self.arrivals += 1
        if not self.deferring:
            self.previous(signum, frame)  # Python's own handler raises KeyboardInterrupt

    def deliver(self) -> None:
        self.previous(signal.SIGINT, None)


_active: _Latch | None = None


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interrupt_latch() -> Iterator[None]:
    """Remember every SIGINT while the block runs (see the module docstring).

    Nested latches share the outer one.
    """
    global _active
    if _active is not None or not _on_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield  # SIGINT is ignored or kills the process: nothing to latch
        return
    latch = _Latch(previous)
    signal.signal(signal.SIGINT, latch.on_sigint)
    _active = latch
    try:
        yield
    finally:
        _active = None
        signal.signal(signal.SIGINT, previous)


@contextmanager
def deferred_interrupts(*, deliver: bool = True) -> Iterator[None]:
    """Hold SIGINT while the block runs; raise it afterwards (``deliver=False``: drop it,
    for a write that ends the turn anyway, or the clean-up that answers an interrupt).

    Only the outermost deferred section raises, once the whole write is done, and only
    for an interrupt that arrived during it (one raised before is on its way already).
    """
    if not _on_main_thread():
        yield
        return
    with interrupt_latch():
        latch = _active
        if latch is None:
            yield
            return
        arrivals, pending = latch.arrivals, latch.pending
        latch.deferring += 1
        try:
            yield
        finally:
            latch.deferring -= 1
        if latch.deferring or latch.arrivals == arrivals:
            return
        if deliver:
            latch.deliver()
        else:
            latch.pending = pending


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt of this turn has not been handled yet."""
    latch = _active
    if latch is not None and latch.pending and not latch.deferring and _on_main_thread():
        latch.deliver()


def interrupt_handled() -> None:
    """The turn's driver has answered the interrupt: forget it."""
    latch = _active
    if latch is not None and _on_main_thread():
        latch.pending = False
