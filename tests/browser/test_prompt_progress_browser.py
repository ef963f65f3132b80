"""The chat panel shows how far a long prompt has been read, in JupyterLab, on the real model.

A short question shows no progress line; a question with a file of several thousand
tokens shows "reading the prompt: N / M tokens" until the first words arrive, and never
both at once. A MutationObserver in the page records every state the panel went
through, so a line shown for a moment is seen too.
"""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from test_widget_browser import PANEL_CELL, run_cell

SETUP_CELL = """%load_ext nbchat
%config NbChat.max_tokens = 12
%config NbChat.temperature = 0.0"""

WATCH = """() => {
  window.__progress = { seen: [], overlap: 0 };
  const check = () => {
    const line = document.querySelector(".nbchat-streaming .nbchat-progress");
    const body = document.querySelector(".nbchat-streaming .nbchat-md");
    const shown = line && !line.hidden && line.textContent ? line.textContent : "";
    if (shown && window.__progress.seen.at(-1) !== shown) window.__progress.seen.push(shown);
    if (shown && body && body.textContent.trim()) window.__progress.overlap += 1;
  };
  new MutationObserver(check).observe(document.body,
    { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def long_notes() -> bytes:
    """About 3,000 tokens, unique to this run so that the server has none of it cached."""
    run = uuid.uuid4().hex[:8]
    lines = [f"Field notes {run}."] + [
        f"Line {n}: plot {n % 13} measured {n * 7 % 97} units of rain on day {n}."
        for n in range(150)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_the_panel_shows_prompt_progress_for_a_long_prompt_only(own_jupyter_lab: Any, page: Any) -> None:
    own_jupyter_lab.write_notebook("progress.ipynb", [SETUP_CELL, PANEL_CELL])
    page.goto(own_jupyter_lab.notebook_url("progress.ipynb"))
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    run_cell(page, 0)
    run_cell(page, 1)
    panel = page.locator(".nbchat-panel")
    expect(panel).to_be_visible(timeout=60_000)
    page.evaluate(WATCH)
    box = panel.locator("textarea.nbchat-input")
    answers = panel.locator(".nbchat-assistant:not(.nbchat-streaming) .nbchat-footer-text")

    box.click()
    box.type("What is the capital of France?")
    box.press("Enter")
    expect(answers).to_have_count(1, timeout=300_000)
    assert page.evaluate("() => window.__progress.seen") == []  # a short prompt: nothing

    panel.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": long_notes()}]
    )
    expect(panel.locator(".nbchat-chips .nbchat-chip-name")).to_have_text("notes.txt",
                                                                           timeout=15_000)
    box.click()
    box.type("How much rain fell on day 3?")
    box.press("Enter")
    progress = panel.locator(".nbchat-streaming .nbchat-progress")
    expect(progress).to_contain_text("reading the prompt:", timeout=600_000)
    expect(answers).to_have_count(2, timeout=900_000)
    watched = page.evaluate("() => window.__progress")
    assert watched["seen"], watched
    assert all(text.startswith("reading the prompt:") and "tokens" in text
               for text in watched["seen"])
    assert watched["overlap"] == 0  # gone at the first token
    expect(panel.locator(".nbchat-progress:not([hidden])")).to_have_count(0)
