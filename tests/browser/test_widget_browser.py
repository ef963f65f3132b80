"""The chat panel in a real browser: its Markdown is inert, and in JupyterLab it streams,
stops, attaches files and DataFrames, and survives a page reload.

Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.notebook.widget import STATIC, ChatWidget

HOSTILE_MARKDOWN = """Here is the answer.

<script>window.__pwned = "script"</script>

<img src=x onerror="window.__pwned = 'img'">

[click me](javascript:window.__pwned='link') and [again](JaVaScRiPt:alert(1))

<a href="javascript:window.__pwned='raw-a'">raw link</a>

![tracker](https://example.invalid/pixel.png?secret=1)

<iframe src="https://example.invalid"></iframe><style>body{display:none}</style>

[fine link](https://example.org/docs) and `<b>code</b>`
"""

# -- the panel on its own: a blank page, the real front end, a small fake model ---------

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>{css}</style>
<style>body {{ margin: 24px; font-family: sans-serif; }}</style></head>
<body><div id="root"></div></body></html>"""

MOUNT = """async (state) => {
  const module = await import("http://nbchat.test/panel.js");
  window.renderMarkdown = module.renderMarkdown;
  const handlers = {};
  window.sent = [];
  window.model = {
    get: (key) => state[key],
    set(key, value) {
      const changes = typeof key === "object" ? key : { [key]: value };
      Object.assign(state, changes);
      for (const name of Object.keys(changes)) {
        (handlers["change:" + name] || []).forEach((f) => f());
      }
    },
    on(event, f) { (handlers[event] ||= []).push(f); },
    off(event, f) { handlers[event] = (handlers[event] || []).filter((g) => g !== f); },
    send(msg) { window.sent.push(msg); },
    emit(event, msg) { (handlers[event] || []).forEach((f) => f(msg)); },
  };
  module.default.initialize({ model: window.model });
  module.default.render({ model: window.model, el: document.getElementById("root") });
}"""


def open_offline_panel(page: Any, state: dict[str, Any]) -> None:
    css = (STATIC / "panel.css").read_text(encoding="utf-8")

    def serve(route: Any) -> None:
        if route.request.url.endswith("/panel.js"):
            route.fulfill(body=ChatWidget._esm, content_type="text/javascript")
        else:
            route.fulfill(body=PAGE.format(css=css), content_type="text/html")

    page.route("http://nbchat.test/**", serve)
    page.goto("http://nbchat.test/index.html")
    page.evaluate(MOUNT, state)


def panel_state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "messages": [], "sessions": [], "session_id": "", "session_title": "",
        "earlier_messages": 0, "pending": {}, "streaming": False, "phase": "", "error": "",
        "attachments": [], "dataframes": [], "meter": {}, "model_label": "llama-server",
        "max_upload_bytes": 1 << 20,
    }
    state.update(changes)
    return state


INERT_CHECK = """(root) => ({
  scripts: root.querySelectorAll("script").length,
  images: root.querySelectorAll("img").length,
  frames: root.querySelectorAll("iframe, style").length,
  handlers: [...root.querySelectorAll("*")]
    .filter((n) => [...n.attributes].some((a) => a.name.startsWith("on"))).length,
  badLinks: [...root.querySelectorAll("[href]")]
    .filter((n) => !/^https?:/i.test(n.getAttribute("href"))).length,
  links: [...root.querySelectorAll("a[href]")]
    .map((a) => [a.getAttribute("href"), a.getAttribute("rel")]),
  text: root.textContent,
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
})"""


def test_model_markdown_cannot_run_script_or_inject_html(page: Any, artifacts: Path) -> None:
    open_offline_panel(page, panel_state())
    result = page.evaluate(
        """([markdown, check]) => {
          const holder = document.createElement("div");
          holder.innerHTML = window.renderMarkdown(markdown);
          document.body.appendChild(holder);
          for (const a of holder.querySelectorAll("a:not([href^='http'])")) a.click();
          return (0, eval)(check)(holder);
        }""",
        [HOSTILE_MARKDOWN, INERT_CHECK],
    )
    assert result["pwned"] is None
    found = (result["scripts"], result["images"], result["frames"], result["handlers"])
    assert found == (0, 0, 0, 0)
    assert result["badLinks"] == 0
    # Raw HTML is shown as text, not dropped: the reader sees what the model wrote.
    assert '<script>window.__pwned = "script"</script>' in result["text"]
    assert "<img src=x onerror=" in result["text"]
    assert ["https://example.org/docs", "noopener noreferrer nofollow"] in result["links"]
    # The image became a link, so nothing was fetched from the model's URL.
    assert "image: tracker" in result["text"]


def test_the_panel_draws_hostile_messages_inert(page: Any, artifacts: Path) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    state = panel_state(
        messages=[
            {"id": 1, "seq": 0, "role": "user", "status": "complete",
             "text": "<img src=x onerror=\"window.__pwned='user'\"> hi",
             "files": ["<b>notes</b>.txt"]},
            {"id": 2, "seq": 1, "role": "assistant", "text": HOSTILE_MARKDOWN,
             "status": "complete", "footer": "<script>window.__pwned='footer'</script>"},
            {"id": 3, "seq": 2, "role": "user", "text": "and the error?", "status": "complete"},
            {"id": 4, "seq": 3, "role": "assistant", "text": "", "status": "error",
             "error": "<img src=x onerror=\"window.__pwned='error'\">", "error_kind": "upstream",
             "footer": "no answer"},
        ],
        error="<script>window.__pwned='panel-error'</script>",
        attachments=[{"key": "file:1", "kind": "file", "name": "<i>x</i>.txt", "detail": "1 KB"}],
    )
    open_offline_panel(page, state)
    page.evaluate(
        "() => window.model.emit('msg:custom', {d: '<img src=x onerror=\"window.__pwned=1\">'})"
    )
    page.wait_for_timeout(200)
    result = page.evaluate(
        "(check) => (0, eval)(check)(document.querySelector('.nbchat-panel'))", INERT_CHECK
    )
    assert result["pwned"] is None
    found = (result["scripts"], result["images"], result["handlers"], result["badLinks"])
    assert found == (0, 0, 0, 0)
    assert "<b>notes</b>.txt" in result["text"] and "window.__pwned='panel-error'" in result["text"]
    assert not [url for url in requested if "example.invalid" in url]
    page.locator(".nbchat-panel").screenshot(path=str(artifacts / "widget-hostile-content.png"))


def test_the_panel_appends_a_streamed_turn_without_the_kernel_resending_it(page: Any) -> None:
    question = {"id": 7, "seq": 0, "role": "user", "status": "complete"}
    open_offline_panel(page, panel_state(streaming=True, phase="streaming"))
    page.evaluate("() => window.model.set('pending', {question: 'Hi?', files: []})")
    page.evaluate("() => window.model.emit('msg:custom', {d: 'Hello '})")
    page.evaluate("() => window.model.emit('msg:custom', {d: 'there 👋'})")
    answer = {"id": 8, "seq": 1, "role": "assistant", "status": "complete", "footer": "12 new tok"}
    done = {
        "drop": 0, "count": 2, "length": len("Hello there 👋".encode("utf-16-le")) // 2,
        "add": [question, answer], "state": {"pending": {}, "streaming": False, "phase": ""},
    }
    page.evaluate("(done) => window.model.emit('msg:custom', {done})", done)
    messages = page.evaluate("() => window.model.get('messages')")
    assert [m.get("text") for m in messages] == ["Hi?", "Hello there 👋"]
    expect(page.locator(".nbchat-assistant .nbchat-md")).to_have_text("Hello there 👋")
    expect(page.locator(".nbchat-streaming")).to_have_count(0)
    # A model that missed the start of the stream asks for the whole state instead.
    page.evaluate("() => window.model.set('pending', {question: 'Again?', files: []})")
    page.evaluate("() => window.model.emit('msg:custom', {d: 'tail only'})")
    page.evaluate("(done) => window.model.emit('msg:custom', {done})", {**done, "count": 4})
    assert {"type": "resync"} in page.evaluate("() => window.sent")


# -- the panel in JupyterLab, against the real local model --------------------------------

SETUP_CELL = """%load_ext nbchat
%config NbChat.max_tokens = 24
import pandas as pd
sales = pd.DataFrame({"region": ["north", "south", "east"], "units": [120, 80, 95]})"""
PANEL_CELL = """from nbchat import ChatWidget
panel = ChatWidget()
panel"""
LONG_ANSWERS_CELL = "%config NbChat.max_tokens = 4000"


def run_cell(page: Any, index: int) -> None:
    """Select cell ``index`` and run it with Shift+Enter, as a user would."""
    page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").nth(index).click()
    page.keyboard.press("Shift+Enter")


STREAMED_LENGTH = """() => {
  const streaming = document.querySelector(".nbchat-streaming .nbchat-md");
  return streaming ? streaming.textContent.length : 0;
}"""


def test_the_panel_streams_stops_and_attaches_in_jupyterlab(
    jupyter_lab: Any, page: Any, artifacts: Path
) -> None:
    started = time.monotonic()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    jupyter_lab.write_notebook("chat.ipynb", [SETUP_CELL, PANEL_CELL, LONG_ANSWERS_CELL])
    page.goto(jupyter_lab.notebook_url("chat.ipynb"))
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    run_cell(page, 0)
    run_cell(page, 1)
    panel = page.locator(".nbchat-panel")
    expect(panel).to_be_visible(timeout=60_000)
    expect(panel.locator(".nbchat-gauge[aria-label='Context']")).to_be_visible(timeout=30_000)
    box = panel.locator("textarea.nbchat-input")
    send = panel.locator("button.nbchat-send")

    # A file from this computer and a DataFrame from the notebook get attached; one is removed.
    panel.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain",
                "buffer": b"Launch notes: the release moves to Friday.\n"}]
    )
    chips = panel.locator(".nbchat-chips .nbchat-chip-name")
    expect(chips.filter(has_text="notes.txt")).to_be_visible(timeout=15_000)
    expect(panel.locator(".nbchat-gauge[aria-label='Files']")).to_be_visible(timeout=15_000)
    frames = panel.locator("select.nbchat-frames")
    frames.focus()
    expect(frames.locator("option[value='sales']")).to_have_count(1, timeout=10_000)
    frames.select_option("sales")
    expect(chips.filter(has_text="sales")).to_be_visible(timeout=10_000)
    box.click()
    box.type("In one sentence: when is the launch?")
    panel.screenshot(path=str(artifacts / "widget-attachments.png"))
    panel.get_by_role("button", name="Remove sales").click()
    expect(chips.filter(has_text="sales")).to_have_count(0, timeout=10_000)

    # The question goes out with the file (Enter sends); the answer completes with its footer.
    box.press("Enter")
    answer = panel.locator(".nbchat-assistant:not(.nbchat-streaming)").first
    expect(answer.locator(".nbchat-footer-text")).to_contain_text("tok", timeout=120_000)
    question_files = panel.locator(".nbchat-user").first.locator(".nbchat-msg-files")
    expect(question_files).to_contain_text("notes.txt")
    expect(panel.locator(".nbchat-chips .nbchat-chip")).to_have_count(0)
    expect(box).to_have_value("")
    panel.screenshot(path=str(artifacts / "widget-answered.png"))

    # A long answer streams in; Stop ends it and the partial answer stays, marked.
    run_cell(page, 2)
    box.click()
    box.type("Write a very long story about a dragon who learns to program in Python.")
    box.press("Shift+Enter")  # a new line, not a send
    box.type("Make it funny.")
    expect(box).to_have_value(re.compile(r"Python\.\nMake it funny\.$"))
    box.press("Enter")
    page.wait_for_function(f"() => ({STREAMED_LENGTH})() > 30", timeout=60_000)
    first = page.evaluate(STREAMED_LENGTH)
    page.wait_for_function(f"() => ({STREAMED_LENGTH})() > {first}", timeout=20_000)
    expect(send).to_have_class(re.compile("nbchat-stop"))
    panel.screenshot(path=str(artifacts / "widget-streaming.png"))
    send.click()
    stopped = panel.locator(".nbchat-assistant").last
    expect(stopped.locator(".nbchat-badge")).to_have_text(re.compile("Stopped"), timeout=30_000)
    expect(stopped.locator(".nbchat-footer-text")).to_contain_text("partial answer")
    expect(send).not_to_have_class(re.compile("nbchat-stop"))
    assert len(stopped.locator(".nbchat-md").inner_text()) > 30
    panel.screenshot(path=str(artifacts / "widget-stopped.png"))

    # Everything is in the store, and a reloaded page draws it again from the kernel.
    # The JupyterLab server is shared by the tier: this panel's session is the one that
    # starts with this test's question.
    question = "In one sentence: when is the launch?"
    with Store(jupyter_lab.db_path) as store:
        [session] = [
            s for s in store.list_sessions()
            if [m.content for m in store.messages(s.id)][:1] == [question]
        ]
        stored = store.messages(session.id)
        assert [m.role for m in stored] == ["user", "assistant"] * 2
        assert stored[0].content == question
        assert stored[3].status == "partial"
        assert store.get_file("notes.txt") is not None
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).click()
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=10_000)
    page.reload()
    expect(page.locator(".nbchat-panel .nbchat-assistant")).to_have_count(2, timeout=60_000)
    expect(page.locator(".nbchat-panel .nbchat-badge")).to_have_text(re.compile("Stopped"))
    page.locator(".nbchat-panel").screenshot(path=str(artifacts / "widget-reloaded.png"))
    assert errors == []
    print(f"\nbrowser test took {time.monotonic() - started:.0f} s")
