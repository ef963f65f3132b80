"""The chat panel's model, driven the way the browser drives it, on a real shell.

Messages from the browser go through the widget's comm handler (``_handle_msg``, as
ipywidgets calls it); what the widget sends back is read from its comm. The model
server is the scripted SSE server on a real socket, and the store a real SQLite file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from sse_server import ScriptedServer, answer, dead_url, progress_chunk

from nbchat.api import ChatClient
from nbchat.core.settings import Settings
from nbchat.notebook.extension import client_for
from nbchat.notebook.widget import ChatWidget

LONG_ANSWER = "The quick brown fox jumps over the lazy dog. " * 40


# -- helpers ----------------------------------------------------------------------------


class Browser:
    """The browser's side of one widget: sends its messages, records what comes back."""

    def __init__(self, widget: ChatWidget) -> None:
        self.widget = widget
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        real_send = widget.comm.send

        def record(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
            with self._lock:
                self.received.append(json.loads(json.dumps(data)))
            real_send(data=data, metadata=metadata, buffers=buffers)

        widget.comm.send = record  # type: ignore[method-assign]

    def send(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        """A custom message from the panel, delivered as the kernel's comm delivers it."""
        msg = {
            "content": {"data": {"method": "custom", "content": content}},
            "buffers": [memoryview(b) for b in buffers or []],
        }
        self.widget._handle_msg(msg)

    def custom(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m["content"] for m in self.received if m.get("method") == "custom"]

    def deltas(self) -> list[str]:
        return [c["d"] for c in self.custom() if "d" in c]

    def updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m["state"] for m in self.received if m.get("method") == "update"]

    def wait_for_delta(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.deltas():
            assert time.monotonic() < deadline, "no answer text reached the browser"
            time.sleep(0.01)


def apply_done(
    messages: list[dict[str, Any]], done: dict[str, Any], question: str, streamed: str
) -> list[dict[str, Any]]:
    """What panel.js does with a ``done`` message (its ``initialize``)."""
    assert len(streamed.encode("utf-16-le")) // 2 == done["length"]
    added = [
        m if "text" in m else {**m, "text": question if m["role"] == "user" else streamed}
        for m in done["add"]
    ]
    merged = messages[done["drop"]:] + added
    assert len(merged) == done["count"]
    return merged


@pytest.fixture
def panel(shell: Any, server: ScriptedServer) -> Iterator[ChatWidget]:
    shell.user_ns["__session__"] = "analysis.ipynb"
    widget = ChatWidget()
    assert widget.wait(10)
    yield widget
    widget.wait(10)
    widget.close()


@pytest.fixture
def browser(panel: ChatWidget) -> Browser:
    return Browser(panel)


def send_and_wait(browser: Browser, text: str) -> None:
    browser.send({"type": "send", "text": text})
    assert browser.widget.wait(15), "the turn did not finish"


# -- sending and streaming --------------------------------------------------------------


def test_the_panel_uses_the_notebooks_client(shell: Any, panel: ChatWidget) -> None:
    assert panel.client is client_for(shell)
    assert panel.client.notebook == "analysis.ipynb"
    assert "llama-server at 127.0.0.1" in panel.model_label


def test_a_sent_message_streams_as_deltas_and_is_stored(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer("Sure: **pandas** groups with `groupby`.", pause_s=0.01))
    send_and_wait(browser, "How do I group rows?")

    assert "".join(browser.deltas()) == "Sure: **pandas** groups with `groupby`."
    assert [m["role"] for m in panel.messages] == ["user", "assistant"]
    assert panel.messages[0]["text"] == "How do I group rows?"
    assert panel.messages[1]["status"] == "complete"
    assert "tok" in panel.messages[1]["footer"]
    assert (panel.streaming, panel.phase, panel.pending) == (False, "", {})
    stored = panel.client.store.messages(panel.session_id)
    assert [m.content for m in stored] == [
        "How do I group rows?", "Sure: **pandas** groups with `groupby`."
    ]
    assert server.chat_requests[0].json["messages"][-1]["content"].endswith("How do I group rows?")


def test_a_long_prompt_sets_the_progress_line_until_the_first_words(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    reports = [progress_chunk(0, 5670, time_ms=0), progress_chunk(2048, 5670, time_ms=13_600),
               progress_chunk(5670, 5670, time_ms=37_800)]
    server.add(answer("Day 3 had 21 units.", progress=reports))
    send_and_wait(browser, "How much rain fell on day 3?")
    shown = [u["progress"] for u in browser.updates() if "progress" in u]
    assert shown == ["reading the prompt: 2,048 / 5,670 tokens", ""]
    assert "".join(browser.deltas()) == "Day 3 had 21 units."
    assert panel.progress == ""


def test_a_short_prompt_sets_no_progress_line(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer("Paris.", progress=[progress_chunk(0, 40), progress_chunk(40, 40, time_ms=90)]))
    send_and_wait(browser, "What is the capital of France?")
    assert not [u for u in browser.updates() if u.get("progress")]


def test_the_question_is_shown_while_the_answer_streams(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer(LONG_ANSWER, pause_s=0.01))
    browser.send({"type": "send", "text": "Tell me a long story"})
    browser.wait_for_delta()
    assert panel.streaming and panel.phase == "streaming"
    assert panel.pending == {"question": "Tell me a long story", "files": []}
    assert panel.wait(15)
    assert panel.pending == {}


def test_the_answer_is_not_sent_twice_when_the_turn_ends(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer("First answer."), answer(LONG_ANSWER, pause_s=0.002))
    send_and_wait(browser, "One?")
    before = list(panel.messages)
    browser.received.clear()
    send_and_wait(browser, "Two?")

    done = [c["done"] for c in browser.custom() if "done" in c]
    assert len(done) == 1
    assert all("messages" not in state for state in browser.updates())
    rebuilt = apply_done(before, done[0], "Two?", "".join(browser.deltas()))
    assert rebuilt == panel.messages
    assert rebuilt[-1]["text"] == LONG_ANSWER


def test_bytes_sent_per_answer_stay_near_the_answer_size(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    # About 100 tokens a second, as the local model streams on a laptop.
    server.add(answer(LONG_ANSWER, piece_chars=4, pause_s=0.01))
    panel.traffic.__init__()
    send_and_wait(browser, "Tell me a long story")
    answer_bytes = len(LONG_ANSWER.encode())
    traffic = panel.traffic
    print(
        f"\nanswer {answer_bytes} B; deltas {traffic.delta_bytes} B in {traffic.delta_messages} "
        f"messages ({traffic.delta_bytes / answer_bytes:.2f}x); whole turn "
        f"{traffic.payload_bytes} B in {traffic.messages} messages "
        f"({traffic.payload_bytes / answer_bytes:.2f}x)"
    )
    assert traffic.delta_bytes <= 2 * answer_bytes
    assert traffic.payload_bytes <= 2.5 * answer_bytes


def test_deltas_are_batched_at_the_stream_update_interval(
    shell: Any, server: ScriptedServer, panel: ChatWidget, browser: Browser
) -> None:
    shell.run_line_magic("config", "NbChat.stream_update_interval = 0.25")
    server.add(answer("abcd" * 100, piece_chars=4, pause_s=0.005))  # 100 pieces in ~0.5 s
    send_and_wait(browser, "Letters please")
    deltas = browser.deltas()
    assert "".join(deltas) == "abcd" * 100
    assert 2 <= len(deltas) <= 5


def test_the_send_handler_returns_at_once_so_stop_can_arrive(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer(LONG_ANSWER, pause_s=0.02))  # about 9 s in full
    started = time.monotonic()
    browser.send({"type": "send", "text": "Tell me a long story"})
    assert time.monotonic() - started < 1.0
    browser.wait_for_delta()
    browser.send({"type": "stop"})
    assert panel.phase == "stopping"
    assert panel.wait(5), "Stop did not end the answer"
    assert time.monotonic() - started < 5

    answer_entry = panel.messages[-1]
    assert answer_entry["status"] == "partial"
    assert answer_entry["error_kind"] == "interrupted"
    assert "partial answer (interrupted" in answer_entry["footer"]
    assert 0 < len(answer_entry["text"]) < len(LONG_ANSWER)
    assert answer_entry["text"] == "".join(browser.deltas())
    assert server.wait_for_disconnect(5)
    stored = panel.client.store.messages(panel.session_id)
    assert stored[-1].status == "partial" and stored[-1].content == answer_entry["text"]


def test_after_a_stop_the_next_message_continues_the_same_session(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer(LONG_ANSWER, pause_s=0.02), answer("Short."))
    browser.send({"type": "send", "text": "Long story"})
    browser.wait_for_delta()
    browser.send({"type": "stop"})
    assert panel.wait(5)
    first_session = panel.session_id
    send_and_wait(browser, "And now short")
    assert panel.session_id == first_session
    assert [m["role"] for m in panel.messages] == ["user", "assistant"] * 2
    assert len(panel.client.store.list_sessions()) == 1


# -- errors ---------------------------------------------------------------------------


def test_a_dead_server_is_reported_inline_and_the_question_given_back(
    shell: Any, panel: ChatWidget, browser: Browser
) -> None:
    shell.run_line_magic("config", f"NbChat.base_url = {dead_url()!r}")
    send_and_wait(browser, "Anyone there?")
    assert "llama-server" in panel.error and "Traceback" not in panel.error
    assert "NBCHAT_BASE_URL" in panel.error or "base_url" in panel.error
    assert panel.messages == [] and panel.streaming is False
    assert {"restore": "Anyone there?"} in browser.custom()
    assert panel.client.store.list_sessions() == []


def test_stop_before_the_answer_starts_sends_nothing(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    with panel.client.store.lock:  # holds the turn in preparation until Stop is in
        browser.send({"type": "send", "text": "Never mind"})
        assert panel.phase == "preparing"
        browser.send({"type": "stop"})
    assert panel.wait(10)
    assert server.chat_requests == [] and panel.messages == []
    assert panel.streaming is False


def test_stop_while_the_turn_is_prepared_leaves_the_question_in_the_input_box(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.tokenize_delay_s = 1.5  # counting the question's tokens is slow
    browser.send({"type": "send", "text": "Count me slowly"})
    deadline = time.monotonic() + 10
    while not server.requests_to("/tokenize"):
        assert time.monotonic() < deadline, "the turn never started counting"
        time.sleep(0.01)
    browser.send({"type": "stop"})
    assert panel.wait(10)
    # panel.js empties the input box when `pending` names the question: it never did.
    assert not any((u.get("pending") or {}).get("question") for u in browser.updates())
    assert server.chat_requests == [] and panel.client.store.list_sessions() == []
    assert panel.streaming is False and panel.phase == "" and panel.error == ""


def test_an_empty_message_is_refused_with_a_hint(panel: ChatWidget, browser: Browser) -> None:
    browser.send({"type": "send", "text": "   \n"})
    assert "empty" in panel.error
    assert panel.streaming is False


def test_a_second_send_while_streaming_is_refused(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer(LONG_ANSWER, pause_s=0.01))
    browser.send({"type": "send", "text": "First"})
    browser.send({"type": "send", "text": "Second"})
    assert "still streaming" in panel.error
    browser.wait_for_delta()
    browser.send({"type": "stop"})
    assert panel.wait(10)
    assert [m["text"] for m in panel.messages if m["role"] == "user"] == ["First"]


def test_the_next_send_clears_the_last_error(panel: ChatWidget, browser: Browser) -> None:
    browser.send({"type": "send", "text": ""})
    assert panel.error
    send_and_wait(browser, "Hello")
    assert panel.error == ""


# -- attachments and the token meter ----------------------------------------------------


NOTES = b"Launch notes: the release moves to Friday because the QA lab is booked.\n" * 3


def test_an_uploaded_file_is_stored_attached_and_sent(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    browser.send({"type": "upload", "name": "notes.txt", "mime": "text/plain"}, [NOTES])
    stored = panel.client.store.get_file("notes.txt")
    assert stored is not None and stored.size_bytes == len(NOTES)
    assert [(a["kind"], a["name"]) for a in panel.attachments] == [("file", "notes.txt")]
    assert panel.wait(10)
    assert panel.meter["attachment_tokens"] > 0
    assert panel.meter["parts"][0]["name"] == "notes.txt"

    send_and_wait(browser, "When is the launch?")
    sent = server.chat_requests[-1].json["messages"][-1]["content"]
    assert "the release moves to Friday" in sent
    assert panel.attachments == []
    assert panel.messages[0]["files"] == ["notes.txt"]


def test_an_attachment_can_be_removed_before_sending(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    browser.send({"type": "upload", "name": "notes.txt", "mime": "text/plain"}, [NOTES])
    key = panel.attachments[0]["key"]
    browser.send({"type": "remove", "key": key})
    assert panel.attachments == []
    send_and_wait(browser, "When is the launch?")
    assert "release moves to Friday" not in server.chat_requests[-1].json["messages"][-1]["content"]


def test_dataframes_in_the_namespace_are_listed_and_attached_as_summaries(
    shell: Any, panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    import pandas as pd

    shell.user_ns["sales"] = pd.DataFrame({"region": ["north", "south"], "units": [120, 80]})
    shell.user_ns["not_a_frame"] = [1, 2, 3]
    try:
        browser.send({"type": "list_dataframes"})
        assert panel.dataframes == [{"name": "sales", "detail": "2 × 2"}]
        browser.send({"type": "attach_dataframe", "name": "sales"})
        assert [(a["kind"], a["name"], a["detail"]) for a in panel.attachments] == [
            ("dataframe", "sales", "2 × 2")
        ]
        send_and_wait(browser, "Which region sold more?")
        sent = server.chat_requests[-1].json["messages"][-1]["content"]
        assert "region" in sent and "units" in sent and "north" in sent
    finally:
        shell.user_ns.pop("sales", None)
        shell.user_ns.pop("not_a_frame", None)


def test_a_dataframe_that_is_gone_is_named_in_the_error(
    shell: Any, panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    import pandas as pd

    shell.user_ns["sales"] = pd.DataFrame({"units": [1]})
    browser.send({"type": "attach_dataframe", "name": "sales"})
    del shell.user_ns["sales"]
    browser.send({"type": "send", "text": "Summarize"})
    assert "'sales'" in panel.error and panel.streaming is False
    assert server.chat_requests == []


def test_the_token_meter_follows_the_draft(panel: ChatWidget, browser: Browser) -> None:
    browser.send({"type": "draft", "text": "short"})
    assert panel.wait(10)
    short = panel.meter["total_tokens"]
    browser.send({"type": "draft", "text": "a much longer question " * 50})
    assert panel.wait(10)
    assert panel.meter["total_tokens"] > short + 100
    assert panel.meter["window_tokens"] == 8192  # the server's n_ctx
    # The server templated and counted the whole draft prompt: the total is exact.
    assert panel.meter["exact"] is True and panel.meter["parts_exact"] is True


def test_the_token_meter_lists_the_passages_of_a_large_file_and_why(
    panel: ChatWidget, browser: Browser
) -> None:
    from needles import needle_document

    document = needle_document()
    browser.send({"type": "upload", "name": "report.txt", "mime": "text/plain"},
                 [document.text.encode()])
    fact = document.facts[8]
    browser.send({"type": "draft", "text": fact.question})
    assert panel.wait(30)
    part = panel.meter["parts"][0]
    assert part["name"] == "report.txt" and part["kept_tokens"] < part["total_tokens"]
    assert part["passages"][0].startswith("lines 1-") and part["passages"][0].endswith("(head)")
    assert any("(matched: fennick, shuttle" in line for line in part["passages"])
    assert any("report.txt: lines 1-" in n for n in panel.meter["notices"])


@pytest.mark.parametrize(
    ("name", "data"),
    [("scan.pdf", b"%PDF-1.4 broken"), ("blank.txt", b"   \n\n")],
)
def test_the_panel_refuses_an_upload_that_chat_store_refuses_with_the_same_message(
    shell: Any, panel: ChatWidget, browser: Browser, tmp_path: Any, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UsageError) as refused:
        shell.run_line_magic("chat", f"store {path}")
    browser.send({"type": "upload", "name": name, "mime": "application/octet-stream"}, [data])
    assert panel.wait(10)
    assert panel.error == str(refused.value)
    assert name in panel.error
    assert panel.attachments == []
    assert panel.client.store.get_file(name) is None


def test_an_upload_over_the_size_limit_is_refused(
    shell: Any, panel: ChatWidget, browser: Browser
) -> None:
    shell.run_line_magic("config", "NbChat.max_file_bytes = 100")
    browser.send({"type": "draft", "text": "x"})  # the panel picks up the new limit
    assert panel.max_upload_bytes == 100
    browser.send({"type": "upload", "name": "big.txt", "mime": "text/plain"}, [b"x" * 500])
    assert "big.txt" in panel.error and "limit" in panel.error
    assert panel.attachments == []
    assert panel.client.store.get_file("big.txt") is None


# -- sessions ----------------------------------------------------------------------------


def test_history_is_drawn_from_the_store_when_the_panel_opens(
    shell: Any, server: ScriptedServer
) -> None:
    shell.user_ns["__session__"] = "history.ipynb"
    client = client_for(shell)
    server.add(answer("Stored answer."))
    for _ in client.run(client.prepare("Stored question?")):
        pass
    widget = ChatWidget()
    try:
        assert [m["text"] for m in widget.messages] == ["Stored question?", "Stored answer."]
        assert "tok" in widget.messages[1]["footer"]
        assert widget.session_title == "Stored question?"
    finally:
        widget.close()


def test_sessions_can_be_switched_started_and_forked(
    panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer("A1"), answer("A2"), answer("B1"))
    send_and_wait(browser, "Q1")
    send_and_wait(browser, "Q2")
    first = panel.session_id

    browser.send({"type": "new_session"})
    assert (panel.session_id, panel.messages) == ("", [])
    send_and_wait(browser, "Other topic")
    second = panel.session_id
    assert second != first
    assert [s["title"] for s in panel.sessions][:2] == ["Other topic", "Q1"]
    assert all(s["here"] for s in panel.sessions)

    browser.send({"type": "select_session", "id": first})
    assert panel.session_id == first
    assert [m["text"] for m in panel.messages] == ["Q1", "A1", "Q2", "A2"]

    browser.send({"type": "fork", "upto_turn": 1})
    assert panel.session_id not in (first, second)
    assert [m["text"] for m in panel.messages] == ["Q1", "A1"]
    assert len(panel.sessions) == 3


def test_sessions_of_other_notebooks_are_listed_apart(
    shell: Any, panel: ChatWidget, browser: Browser
) -> None:
    other = ChatClient(Settings.from_env(), notebook="other.ipynb")
    other.new_session("From elsewhere")
    browser.send({"type": "refresh"})
    listed = {s["title"]: s["here"] for s in panel.sessions}
    assert listed == {"From elsewhere": False}
    other.close()


def test_an_unknown_session_is_an_inline_error(panel: ChatWidget, browser: Browser) -> None:
    browser.send({"type": "select_session", "id": "nope"})
    assert "No session 'nope'" in panel.error


def test_a_turn_sent_by_the_magic_appears_in_the_panel(
    shell: Any, panel: ChatWidget, browser: Browser, server: ScriptedServer
) -> None:
    server.add(answer("From the widget."), answer("From the magic."))
    send_and_wait(browser, "Widget question")
    shell.run_cell_magic("chat", "", "Magic question")
    assert [m["text"] for m in panel.messages][-2:] == ["Magic question", "From the magic."]


# -- against the real local model --------------------------------------------------------


def test_bytes_sent_for_a_real_streamed_answer(shell: Any, llama_url: str) -> None:
    """Prints what one answer of the local model costs on the comm (see the report)."""
    shell.user_ns["__session__"] = "measure.ipynb"
    shell.run_line_magic("config", f"NbChat.base_url = {llama_url!r}")
    shell.run_line_magic("config", "NbChat.max_tokens = 96")
    widget = ChatWidget()
    browser = Browser(widget)
    try:
        assert widget.wait(60)
        widget.traffic.__init__()
        started = time.monotonic()
        send_and_wait_long(browser, "Explain in a few sentences what a list comprehension is.")
        elapsed_s = time.monotonic() - started
        answer_text = widget.messages[-1]["text"]
        answer_bytes = len(answer_text.encode())
        traffic = widget.traffic
        print(
            f"\nreal answer: {answer_bytes} B in {elapsed_s:.1f} s; deltas {traffic.delta_bytes} B "
            f"in {traffic.delta_messages} messages ({traffic.delta_bytes / answer_bytes:.2f}x); "
            f"whole turn {traffic.payload_bytes} B in {traffic.messages} messages "
            f"({traffic.payload_bytes / answer_bytes:.2f}x)"
        )
        assert answer_bytes > 0
        assert "".join(browser.deltas()) == answer_text
        assert all("messages" not in state for state in browser.updates())
        # Each update carries the new text and a fixed envelope, never the answer so far.
        assert traffic.delta_bytes <= answer_bytes + 48 * traffic.delta_messages
    finally:
        widget.close()


def send_and_wait_long(browser: Browser, text: str) -> None:
    browser.send({"type": "send", "text": text})
    assert browser.widget.wait(180), "the local model did not finish its answer"
    assert browser.widget.error == ""
