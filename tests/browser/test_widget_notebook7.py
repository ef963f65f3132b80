"""The chat panel in Notebook 7: ``%chat widget`` renders, sends and answers there too.

The JupyterLab test covers streaming, Stop, attachments and reload; this one checks
that the same front end loads in Notebook 7's page and completes a turn against the
real local model. The screenshot goes to ``test-artifacts/widget-notebook7.png``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from nbchat.core.sqlite_store import SqliteStore as Store

# Notebook 7.6's keyboard-shortcut settings plugin throws this on load of every notebook,
# with or without nbchat; only errors raised elsewhere count against the panel.
NOTEBOOK_OWN_ERROR = re.compile(r"reading 'schema'\)\n\s+at \S+/static/notebook/notebook_core\.")

CELLS = ["%load_ext nbchat\n%config NbChat.max_tokens = 24", "%chat widget"]


def run_all_cells(page: Any) -> None:
    """Run → Run All Cells, from Notebook 7's menu bar, until the first cell has run.

    On a loaded machine the page can show an idle kernel before the notebook is wired to
    it, and a Run All clicked then runs nothing (every prompt stays ``[ ]:``): the click
    is repeated, as a user would, until the first cell shows it ran.
    """
    ran = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt")
    for _ in range(5):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            expect(ran).to_contain_text(re.compile(r"\[(\d+|\*)\]"), timeout=15_000)
            return
        except AssertionError:
            continue
    expect(ran).to_contain_text(re.compile(r"\[(\d+|\*)\]"), timeout=1)


def test_the_panel_answers_a_question_in_notebook_7(
    jupyter_notebook: Any, page: Any, artifacts: Path
) -> None:
    started = time.monotonic()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(error.stack or str(error)))
    jupyter_notebook.write_notebook("chat7.ipynb", CELLS)
    page.goto(jupyter_notebook.notebook_url("chat7.ipynb"))
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(2, timeout=60_000)
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    expect(idle).to_be_attached(timeout=60_000)
    run_all_cells(page)
    panel = page.locator(".nbchat-panel")
    expect(panel).to_be_visible(timeout=60_000)
    expect(panel.locator(".nbchat-gauge[aria-label='Context']")).to_be_visible(timeout=30_000)

    box = panel.locator("textarea.nbchat-input")
    box.click()
    box.type("Say hello in three words.")
    box.press("Enter")
    answer = panel.locator(".nbchat-assistant:not(.nbchat-streaming)").first
    expect(answer.locator(".nbchat-footer-text")).to_contain_text("tok", timeout=60_000)
    assert answer.locator(".nbchat-md").inner_text().strip()
    expect(panel.locator(".nbchat-user").first).to_contain_text("Say hello in three words.")
    expect(box).to_have_value("")
    page.screenshot(path=str(artifacts / "widget-notebook7.png"))

    with Store(jupyter_notebook.db_path) as store:
        [session] = store.list_sessions()
        assert [m.role for m in store.messages(session.id)] == ["user", "assistant"]
    assert [error for error in errors if not NOTEBOOK_OWN_ERROR.search(error)] == []
    print(f"\nNotebook 7 browser test took {time.monotonic() - started:.0f} s")
