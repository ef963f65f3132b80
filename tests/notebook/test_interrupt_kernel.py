"""Ctrl-C (the kernel's interrupt) at each stage of a ``%%chat`` cell, in a real kernel.

ipykernel driven by nbclient runs the cells; the test sends the kernel SIGINT, as
Jupyter's interrupt button does, at a moment it observes: the scripted server has been
asked for a token count, a health check or the answer, or the database holds the
question. Each interrupted cell shows one line and no traceback, keeps nothing half
stored, and the kernel goes on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from sse_server import ScriptedServer, answer, delta_chunk, finish_chunk, sse_reply

BEFORE_SENDING = "⚠ Interrupted before the question was sent; nothing was stored."
BEFORE_FIRST_WORD = "⚠ Interrupted before the first word arrived; the question is kept in the session."
SLOW_S = 60  # a stage the test interrupts long before it ends


def shown(cell: Any) -> list[str]:
    """Every non-empty thing the cell shows, errors as their name and first line."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text.strip())
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")).strip())
    return [part for part in parts if part]


def messages(db_path: Path) -> list[tuple[str, str, str, str | None]]:
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "messages" not in tables:
            return []
        return db.execute(
            "SELECT role, content, status, error_kind FROM messages ORDER BY session_id, seq"
        ).fetchall()


class Kernel:
    """One kernel running cells one by one; ``run`` may interrupt it when ``when()``."""

    def __init__(self, client: NotebookClient, notebook: Any) -> None:
        self.client = client
        self.notebook = notebook
        self.pid = 0

    def run(self, source: str, *, interrupt_when: Callable[[], Any] | None = None) -> Any:
        cell = nbformat.v4.new_code_cell(source)
        self.notebook.cells.append(cell)
        fired = threading.Event()
        done = threading.Event()

        def watch() -> None:
            deadline = time.monotonic() + SLOW_S
            while not done.is_set() and time.monotonic() < deadline:
                if interrupt_when is not None and interrupt_when():
                    os.kill(self.pid, signal.SIGINT)  # what Jupyter's interrupt button sends
                    fired.set()
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        if interrupt_when is not None:
            watcher.start()
        started = time.monotonic()
        try:
            self.client.execute_cell(cell, len(self.notebook.cells) - 1)
        finally:
            done.set()
        if interrupt_when is not None:
            watcher.join()
            assert fired.is_set(), f"the marker never showed: {shown(cell)}"
            assert time.monotonic() - started < SLOW_S / 2, "the interrupt did not stop the wait"
        return cell


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def kernel(server: ScriptedServer, tmp_path: Path) -> Iterator[Kernel]:
    notebook = nbformat.v4.new_notebook()
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    with client.setup_kernel():
        kernel = Kernel(client, notebook)
        first = kernel.run(
            "import os\nprint(os.getpid())\n%load_ext nbchat\n"
            f"%config NbChat.base_url = {server.url!r}\n%config NbChat.backend = 'llama'"
        )
        kernel.pid = int(shown(first)[0])
        yield kernel


def test_ctrl_c_while_a_large_file_is_prepared_shows_one_line_and_stores_nothing(
    kernel, server, tmp_path, _private_database
):
    big = tmp_path / "big.txt"
    line = "A line of a long report, with numbers 12345 and words to count.\n"
    big.write_text(line * (2_000_000 // len(line)))
    server.tokenize_delay_s = SLOW_S  # counting the file's tokens takes "forever"
    cell = kernel.run(
        f"%%chat -f {big}\nSummarise the report.",
        interrupt_when=lambda: server.requests_to("/tokenize"),
    )
    assert shown(cell) == [BEFORE_SENDING]
    assert messages(_private_database) == []
    assert server.chat_requests == []
    server.tokenize_delay_s = 0
    server.add(answer("It is about numbers."))
    after = kernel.run(f"%%chat -f {big}\nSummarise the report.")
    assert "It is about numbers." in shown(after)[0]
    assert [m[:3] for m in messages(_private_database)] == [
        ("user", "Summarise the report.", "complete"),
        ("assistant", "It is about numbers.", "complete"),
    ]


def test_ctrl_c_during_the_health_check_shows_one_line_and_stores_nothing(
    kernel, server, _private_database
):
    server.health_delay_s = SLOW_S
    cell = kernel.run("%%chat\nAre you there?", interrupt_when=lambda: server.requests_to("/health"))
    assert shown(cell) == [BEFORE_SENDING]
    assert messages(_private_database) == [] and server.chat_requests == []
    assert shown(kernel.run("print('kernel alive', 6 * 7)")) == ["kernel alive 42"]


def test_ctrl_c_before_the_server_answers_the_request_shows_one_line_and_stores_nothing(
    kernel, server, _private_database
):
    server.add(answer("Too late.", delay_s=SLOW_S))  # no status line yet
    cell = kernel.run("%%chat\nAre you there?", interrupt_when=lambda: server.chat_requests)
    assert shown(cell) == [BEFORE_SENDING]
    assert messages(_private_database) == []


def test_ctrl_c_after_the_question_is_stored_keeps_it_with_an_interrupted_answer(
    kernel, server, _private_database
):
    server.add(sse_reply(SLOW_S, delta_chunk("Too late."), finish_chunk()))
    cell = kernel.run(
        "%%chat\nTake your time.",
        interrupt_when=lambda: messages(_private_database),  # the question is stored
    )
    (footer,) = shown(cell)  # the footer alone: the problem over the usual line
    assert footer.splitlines() == [BEFORE_FIRST_WORD, "scripted-model · no answer"]
    assert messages(_private_database) == [
        ("user", "Take your time.", "complete", None),
        ("assistant", "", "error", "interrupted"),
    ]
    server.add(answer("Here now."))
    assert "Here now." in shown(kernel.run("%%chat\nStill there?"))[0]
