"""Notebook-native help in a real kernel (ipykernel, driven by nbclient): a cell raises
and ``%chat error --dry-run`` shows it, ``--cell 2-4`` attaches three cells with what
the kernel really keeps of their outputs, and ``%chat code`` answers with a
``set_next_input`` payload."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from sse_server import ScriptedServer, answer

FAKE_KEY = "sk-or-v1-PLANTEDfeedfacefeedface0123"
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
CODE = "def square(x):\n    return {'value': x ** 2}  # braces kept\n\nprint(square(3))"
ANSWER = f"Here is a function:\n\n```python\n{CODE}\n```\n\nThat is all."


def text_of(cell: Any) -> str:
    """Everything a cell shows as text (streams, results, displays)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(str(output.data.get("text/plain", "")))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "\n".join(parts)


@pytest.fixture
def executed(tmp_path) -> Any:
    with ScriptedServer() as server:
        server.add(answer(ANSWER))
        sources = [
            f"%load_ext nbchat\n%config NbChat.backend = 'llama'\n%config NbChat.base_url = {server.url!r}",
            "print('three')",
            "import base64\nfrom IPython.display import Image, display\n"
            f"display(Image(data=base64.b64decode({PIXEL!r})))\n'four'",
            "import sys\nprint('five', file=sys.stderr)",
            f"def load(path):\n    token = '{FAKE_KEY}'\n    return open(path)\n\nload('/no/such/file.csv')",
            "%chat error --dry-run",
            "%%chat --dry-run --cell 2-4\nWhat do {In[3]} and these cells do?",
            "%%chat\nWrite a function that squares a number.",
            "%chat code",
        ]
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in sources]
        )
        notebook.cells[4].metadata["tags"] = ["raises-exception"]
        replies: dict[int, Any] = {}

        def keep_reply(cell: Any, cell_index: int, execute_reply: Any) -> None:
            replies[cell_index] = execute_reply

        client = NotebookClient(
            notebook, kernel_name="python3", timeout=120, on_cell_executed=keep_reply,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        yield notebook, replies, server


def test_error_dry_run_in_a_kernel_shows_exception_masked_traceback_and_code(executed):
    notebook, _, _ = executed
    assert notebook.cells[4].outputs[-1].ename == "FileNotFoundError"
    shown = text_of(notebook.cells[5])
    assert "=== BEGIN ERROR error In[5]" in shown
    assert "Exception: FileNotFoundError: [Errno 2] No such file or directory: '/no/such/file.csv'" in shown
    assert "Cell In[5], line 5" in shown and "----> 5 load('/no/such/file.csv')" in shown
    assert "In [5]:\ndef load(path):\n    token = '[redacted]'" in shown
    assert FAKE_KEY not in json.dumps(notebook.cells[5].outputs)
    assert "\x1b[" not in shown


def test_cells_2_to_4_are_attached_with_their_kept_outputs(executed):
    notebook, _, _ = executed
    shown = text_of(notebook.cells[6])
    for number in (2, 3, 4):
        assert f"=== BEGIN CELL In[{number}] (cell," in shown
    assert "In [2]:\nprint('three')\n\nOut [2]:\nthree" in shown
    assert "Out [3]:\n[image output]\n'four'" in shown  # the display, filed by nbchat's hook
    assert "Out [4]:\nfive" in shown
    assert shown.rstrip().endswith("What do {In[3]} and these cells do?")


def test_code_answers_with_a_set_next_input_payload_of_the_blocks_exact_text(executed):
    notebook, replies, server = executed
    assert len(server.chat_requests) == 1
    payloads = replies[8]["content"]["payload"]
    assert payloads == [{"source": "set_next_input", "text": CODE, "replace": False}]
    assert "Code block 1 of 1" not in text_of(notebook.cells[8])
    assert "The code block of the last answer is in a new cell below." in text_of(notebook.cells[8])
