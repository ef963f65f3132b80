"""A server that dies mid-answer, and a kernel interrupted mid-answer.

Both keep the partial answer, stored and marked, say clearly what happened, and the
conversation goes on: the next turn works once a server is back (the real llama-server
case) or right away (the interrupt case, in a real kernel driven by nbclient).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import nbchat
from nbchat.core.errors import BackendError
from nbchat.engine import start_engine
from dbcheck import INTERNAL_NAMES, half_written_turns, integrity, rows, seq_problems
from sse_server import ScriptedServer, answer, delta_chunk, sse_reply


def _messages(db_path: Path | str) -> list[tuple[int, str, str, str, str | None]]:
    return rows(  # type: ignore[return-value]
        db_path, "SELECT seq, role, content, status, error_kind FROM messages "
        "ORDER BY session_id, seq")


def test_a_llama_server_killed_mid_answer_keeps_the_partial_answer(own_llama, gguf_path, db_path,
                                                                    tmp_path):
    received: list[str] = []
    for piece in nbchat.iter_chat("Count from 1 to 300, one number per line.",
                                  base_url=own_llama.url, max_tokens=600):
        received.append(piece)
        if len(received) == 3:
            os.kill(own_llama.pid, signal.SIGKILL)
    result = nbchat.api.last_result()
    assert result is not None
    assert result.status == "partial"
    assert result.text == "".join(received) and result.text
    message = result.error_message or ""
    assert "llama-server" in message and "partial answer was kept" in message
    assert not INTERNAL_NAMES.search(message)
    question, stored = _messages(db_path)[-2:]
    assert question[1:3] == ("user", "Count from 1 to 300, one number per line.")
    assert stored[1:4] == ("assistant", result.text, "partial")

    # While no server runs, a turn says so plainly (the question is not lost either way).
    try:
        dead = nbchat.chat("Are you there?", base_url=own_llama.url)
        said = dead.error_message or ""
        assert dead.status == "error"
    except BackendError as error:
        said = str(error)
    assert "No llama-server is running at" in said and not INTERNAL_NAMES.search(said)

    # A new server comes up on another port: the conversation carries on there.
    revived = start_engine(gguf_path, ctx_tokens=8192, reuse=False,
                           log_path=tmp_path / "engine-revived.log")
    try:
        after = nbchat.chat("Say hello in one word.", base_url=revived.url, max_tokens=8)
    finally:
        revived.stop()
    assert after.status == "complete" and after.text.strip()
    assert after.session_id == result.session_id
    rows = _messages(db_path)
    assert [r for r in rows if r[3] == "partial"] == [stored]
    assert rows[-1][1:4] == ("assistant", after.text, "complete")
    assert seq_problems(db_path) == [] and half_written_turns(db_path) == []
    assert integrity(db_path) == "ok"


LONG_ANSWER = " ".join(f"Sentence {i} of a long answer." for i in range(200))
INTERRUPT_AFTER_S = 3


def _run_notebook(cells: list[str], timeouts: dict[int, int], cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    for index, cell in enumerate(notebook.cells):
        cell.metadata["reliability_index"] = index
    client = NotebookClient(
        notebook,
        timeout=120,
        timeout_func=lambda cell: timeouts.get(cell.metadata.get("reliability_index"), 120),
        interrupt_on_timeout=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return notebook


def _texts(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append("\n".join([output.ename, output.evalue, *output.traceback]))
        else:
            parts += [str(v) for v in output.get("data", {}).values()]
    return "\n".join(parts)


def test_a_kernel_interrupt_mid_answer_keeps_the_partial_answer_and_the_kernel(db_path, tmp_path):
    slow = answer(LONG_ANSWER, piece_chars=24, pause_s=0.05)
    dies = sse_reply(delta_chunk("Half an answer, then"), 0.2, drop=True)  # the server dies
    with ScriptedServer(slow, dies, answer("A short answer.")) as server:
        cells = [
            "%load_ext nbchat\n"
            f"%config NbChat.base_url = {server.url!r}\n"
            "%config NbChat.backend = 'llama'",
            "%%chat\nTell me a very long story.",
            "%%chat\nAnd another one.",
            "%%chat\nNow a short one, please.",
            "print('kernel alive', 6 * 7)",
        ]
        notebook = _run_notebook(cells, {1: INTERRUPT_AFTER_S}, tmp_path)
        sent_last = server.chat_requests[-1].json["messages"]
    interrupted, broken, following, alive = notebook.cells[1:]
    shown = _texts(interrupted)
    assert "partial answer (interrupted; kept as received)" in shown
    assert "Sentence 0 of a long answer." in shown
    assert not any(o.output_type == "error" for o in interrupted.outputs), shown
    broke = _texts(broken)
    assert "Half an answer, then" in broke and "partial answer (stream failed" in broke
    assert "broke before the answer was complete" in broke
    assert not any(o.output_type == "error" for o in broken.outputs), broke
    assert "A short answer." in _texts(following)
    assert "kernel alive 42" in _texts(alive)

    rows = _messages(db_path)
    assert [r[1] for r in rows] == ["user", "assistant"] * 3
    partial = rows[1]
    assert partial[3:] == ("partial", "interrupted")
    assert LONG_ANSWER.startswith(partial[2]) and 0 < len(partial[2]) < len(LONG_ANSWER)
    assert rows[3][2:4] == ("Half an answer, then", "partial")
    assert rows[5][2:4] == ("A short answer.", "complete")
    # The next turn's prompt holds both partial answers as they were received.
    assert {"role": "assistant", "content": partial[2]} in sent_last
    assert {"role": "assistant", "content": "Half an answer, then"} in sent_last
    assert seq_problems(db_path) == [] and integrity(db_path) == "ok"

