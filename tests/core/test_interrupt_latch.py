"""Ctrl-C during a turn: latched, raised again when swallowed, held while a write runs.

``_thread.interrupt_main`` trips Python's SIGINT handling exactly as Ctrl-C does, in the
main thread; the handler runs at the next bytecode boundary (:func:`spin`).
"""

from __future__ import annotations

import _thread
import signal

import pytest

from nbchat.core.attachments import path_spec
from nbchat.core.interrupts import (
    deferred_interrupts,
    interrupt_handled,
    interrupt_latch,
    raise_if_interrupted,
)
from nbchat.core.tokens import CachedCounter, EstimateCounter
from nbchat.core.turn import TurnResult, prepare_turn, run_turn

from inprocess_backend import ScriptedBackend


@pytest.fixture(autouse=True)
def python_handles_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt, as in any interactive session, even when the test
    run was started in the background (a shell then ignores SIGINT for it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def spin() -> None:
    """Run some bytecode, during which Python delivers a pending interrupt."""
    total = 0
    for step in range(200_000):
        total += step


def ctrl_c() -> None:
    _thread.interrupt_main()
    spin()


def test_ctrl_c_inside_a_deferred_section_is_raised_once_the_section_ends():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            ctrl_c()
            finished.append("the write")
    assert finished == ["the write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_deferred_section_that_ends_the_turn_anyway_drops_the_interrupt():
    with deferred_interrupts(deliver=False):
        ctrl_c()
    spin()  # nothing left to deliver


def test_only_the_outermost_deferred_section_raises():
    order = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            with deferred_interrupts():
                ctrl_c()
            order.append("after the inner section")
    assert order == ["after the inner section"]


def test_an_interrupt_swallowed_on_the_way_is_raised_again_at_the_next_check():
    with interrupt_latch():
        try:
            ctrl_c()
        except KeyboardInterrupt:
            pass  # what a library's broad except, or a finalizer, does with it
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        interrupt_handled()
        raise_if_interrupted()  # handled: nothing more
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_latch_the_check_does_nothing():
    raise_if_interrupted()
    interrupt_handled()


class InterruptingCounter(CachedCounter):
    """Ctrl-C arrives while the turn writes: on the ``at``-th flush of the token cache,
    which runs inside the question's transaction (1) and the answer's (2)."""

    def __init__(self, store, at: int) -> None:
        super().__init__(EstimateCounter(), store)
        self.at = at
        self.flushes = 0

    def flush(self, store, db) -> None:
        self.flushes += 1
        if self.flushes == self.at:
            ctrl_c()
        super().flush(store, db)


def prepared_turn(store, settings, tmp_path, counter):
    notes = tmp_path / "notes.txt"
    notes.write_text("Plot 7 gets the tomatoes this year.", encoding="utf-8")
    return prepare_turn(
        store, settings, "Where do the tomatoes go?", [path_spec(notes)], session=None,
        new_session=None, counter=counter, window_tokens=8192,
    )


def test_ctrl_c_while_the_question_is_written_keeps_it_whole_with_an_interrupted_answer(
    store, settings, tmp_path
):
    prepared = prepared_turn(store, settings, tmp_path, InterruptingCounter(store, at=1))
    kept = []
    with pytest.raises(KeyboardInterrupt):
        list(run_turn(store, ScriptedBackend(), prepared, on_stored=kept.append))
    (result,) = kept
    question, answer = store.messages(result.session_id)
    assert (question.role, question.content) == ("user", "Where do the tomatoes go?")
    assert [a.name for a in store.attachments(result.session_id)] == ["notes.txt"]
    assert (answer.role, answer.content, answer.status, answer.error_kind) == (
        "assistant", "", "error", "interrupted"
    )


def test_ctrl_c_while_the_answer_is_written_comes_too_late_and_the_answer_is_complete(
    store, settings, tmp_path
):
    prepared = prepared_turn(store, settings, tmp_path, InterruptingCounter(store, at=2))
    events = list(run_turn(store, ScriptedBackend("All of it."), prepared))
    result = events[-1]
    assert isinstance(result, TurnResult) and result.status == "complete"
    spin()  # the interrupt was dropped, not left pending
    question, answer = store.messages(result.session_id)
    assert (answer.content, answer.status) == ("All of it.", "complete")
