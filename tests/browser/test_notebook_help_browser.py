"""Notebook-native help in JupyterLab: the panel's "Explain last error", the Copy button
of an answer's code block, and ``%chat code`` adding a cell with that code.

The kernel talks to a scripted server in this process (its answer carries a known code
block), so the checks are on exact text, not on a model's words. The screenshot goes to
``test-artifacts/notebook-help.png``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sse_server import ScriptedServer, answer

CODE = "settings = {'retries': 3}  # a number, not \"3\"\nprint(2 ** settings['retries'])"
ANSWER = f"The retries count is a string.\n\n```python\n{CODE}\n```\n\nRun it again."


def run_cell(page: Any, index: int, keys: str = "Shift+Enter") -> None:
    """Select cell ``index`` and run it (Shift+Enter; Ctrl+Enter stays, adds no cell)."""
    page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").nth(index).click()
    page.keyboard.press(keys)


def test_explain_copy_and_code_into_a_new_cell_in_jupyterlab(
    own_jupyter_lab: Any, page: Any, artifacts: Path
) -> None:
    started = time.monotonic()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=own_jupyter_lab.url)
    with ScriptedServer() as server:
        server.add(answer(ANSWER))
        cells = [
            f"%load_ext nbchat\n%config NbChat.base_url = {server.url!r}",
            "settings = {'retries': '3'}\n2 ** settings['retries']",
            "%chat widget",
            "%chat code",
        ]
        own_jupyter_lab.write_notebook("help.ipynb", cells)
        page.goto(own_jupyter_lab.notebook_url("help.ipynb"))
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
        run_cell(page, 0)
        run_cell(page, 1)
        # The kernel drops cells queued behind a failing one: wait for the error first.
        failed = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
        expect(failed).to_contain_text("TypeError", timeout=60_000)
        run_cell(page, 2)
        panel = page.locator(".nbchat-panel")
        expect(panel).to_be_visible(timeout=60_000)

        # The kernel has an error: the panel offers to explain it, and the answer comes.
        explain = panel.get_by_role("button", name="Explain last error")
        expect(explain).to_be_visible(timeout=30_000)
        expect(explain).to_have_attribute("title", re.compile(r"TypeError: .* \(In \[2\]\)"))
        explain.click()
        answered = panel.locator(".nbchat-assistant:not(.nbchat-streaming)")
        expect(answered.locator(".nbchat-footer-text")).to_contain_text("tok", timeout=60_000)
        expect(panel.locator(".nbchat-user").first).to_contain_text(
            "Explain this error and how to fix it."
        )
        expect(panel.locator(".nbchat-user .nbchat-msg-files")).to_contain_text("error In[2]")
        sent = server.chat_requests[-1].json["messages"][-1]["content"]
        assert "TypeError: unsupported operand type(s) for ** or pow(): 'int' and 'str'" in sent
        assert "In [2]:\nsettings = {'retries': '3'}" in sent

        # The code block's Copy button puts its exact text on the clipboard.
        copy = panel.get_by_role("button", name="Copy code block 1")
        copy.click()
        expect(copy).to_have_class(re.compile("nbchat-done"))
        assert page.evaluate("() => navigator.clipboard.readText()") == CODE
        panel.screenshot(path=str(artifacts / "notebook-help.png"))

        # `%chat code` adds a cell below with that code (JupyterLab honours set_next_input).
        run_cell(page, 3, "Control+Enter")
        expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(5, timeout=30_000)
        added = page.locator(".jp-Notebook .jp-Cell").nth(4).locator(".cm-content")
        expect(added).to_have_text(re.compile(r"^settings = \{'retries': 3\}"), timeout=10_000)
        lines = added.locator(".cm-line").all_inner_texts()
        assert "\n".join(lines) == CODE
        assert len(server.chat_requests) == 1
    assert errors == []
    print(f"\nnotebook-help browser test took {time.monotonic() - started:.0f} s")
