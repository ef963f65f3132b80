"""Prompt progress in a real kernel (nbclient) against the real llama-server.

A prompt of several thousand tokens takes seconds to read on a CPU: the answer's output
shows "reading the prompt: N / M tokens" meanwhile, and the first words replace it. A
short prompt shows nothing of the kind. Every message the kernel sends is recorded, so
the test sees the intermediate display updates, not only the final output.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

PROGRESS = "reading the prompt:"


class RecordingClient(NotebookClient):
    """nbclient that keeps every iopub message of every cell, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, str, dict[str, Any]]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.seen.append((cell_index, msg["msg_type"], msg["content"]))
        return super().process_message(msg, cell, cell_index)


def long_notes(path: Path) -> Path:
    """About 3,000 tokens of notes, unique to this run so that nothing of it is cached."""
    run = uuid.uuid4().hex[:8]
    lines = [f"Field notes {run}."] + [
        f"Line {n}: plot {n % 13} measured {n * 7 % 97} units of rain on day {n}."
        for n in range(150)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def shown_texts(seen: list[tuple[int, str, dict[str, Any]]], cell_index: int) -> list[str]:
    """What each display and display update of one cell shows (plain text, else the
    Markdown of a streaming redraw), in order."""
    return [
        str(content["data"].get("text/plain") or content["data"].get("text/markdown", ""))
        for index, kind, content in seen
        if index == cell_index and kind in ("display_data", "update_display_data")
    ]


def test_a_long_prompt_shows_reading_progress_until_the_first_words(
    llama_url: str, tmp_path: Path
) -> None:
    notes = long_notes(tmp_path / "notes.txt")
    cells = [
        "%load_ext nbchat\n"
        f"%config NbChat.base_url = {llama_url!r}\n"
        "%config NbChat.backend = 'llama'\n"
        "%config NbChat.temperature = 0.0\n"
        "%config NbChat.max_tokens = 12",
        f"%%chat -f {notes}\nHow much rain fell on day 3?",
        "%%chat --new\nWhat is the capital of France?",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = RecordingClient(notebook, timeout=900, kernel_name="python3",
                             resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    long_cell = shown_texts(client.seen, 1)
    reports = [text for text in long_cell if text.startswith(PROGRESS)]
    assert reports, long_cell
    assert all(" / " in text and "tokens" in text for text in reports)
    last_report = max(i for i, text in enumerate(long_cell) if text.startswith(PROGRESS))
    after = [text for text in long_cell[last_report + 1 :] if text.strip()]
    assert after and not any(PROGRESS in text for text in after)  # replaced by the answer
    final = "\n".join(str(o.get("data", {})) for o in notebook.cells[1].outputs)
    assert PROGRESS not in final and "prompt" in final  # the answer and its footer remain

    short_cell = shown_texts(client.seen, 2)
    assert short_cell and not any(PROGRESS in text for text in short_cell)
