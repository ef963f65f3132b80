"""``%%chat`` on a real IPython shell against a real HTTP server playing scripted streams."""

from __future__ import annotations

import _thread
import re
import signal
import threading
import time

import pytest
from IPython.core.error import UsageError

from nbchat.core.errors import BackendUnreachable
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.notebook import extension
from nbchat.notebook.render import DryRunView
from filegen import make_text_pdf
from notebook_helpers import RecordingPublisher, last_user_content, row_counts
from sse_server import (
    FAKE_OPENROUTER_KEY, answer, dead_url, delta_chunk, json_reply, progress_chunk, sse_reply,
)


def messages_of(db_path, shell):
    client = extension.client_for(shell)
    session = client.current_session()
    assert session is not None
    with Store(db_path) as store:
        return store.messages(session.id)


def test_the_cell_magic_help_is_its_argparse_usage(shell):
    doc = shell.find_cell_magic("chat").__doc__
    assert "%%chat [-m MODEL]" in doc
    for option in ("--file", "--df", "--var", "--nb", "--system", "--max-tokens", "--temperature",
                   "--no-history", "--dry-run", "--recall", "--new", "--session", "--backend"):
        assert option in doc


def test_question_mark_help_shows_the_usage(shell, capsys):
    capsys.readouterr()
    shell.run_cell("%%chat?")
    shown = capsys.readouterr().out
    assert "%%chat [-m MODEL]" in shown and "--dry-run" in shown


def test_the_body_is_sent_verbatim_with_braces_and_backticks(shell, server, recorder):
    shell.user_ns["x"] = "SHOULD-NOT-APPEAR"
    body = "What does {x} mean, and `{{y}}`? ${x} $x ```py\nprint({})\n```"
    server.add(answer("It means braces."))
    shell.run_cell_magic("chat", "", body)
    assert last_user_content(server) == body
    assert recorder.answer_text() == "It means braces."


# The cadence of llama-server reading a 5,670-token prompt: a report at the start, one
# per 2,048-token batch, one when done (time_ms is the server's reading time so far).
LONG_PROMPT_PROGRESS = [
    progress_chunk(0, 5670, time_ms=0), progress_chunk(2048, 5670, time_ms=13_600),
    progress_chunk(4096, 5670, time_ms=27_300), progress_chunk(5670, 5670, time_ms=37_800),
]


def test_a_long_prompt_shows_reading_progress_until_the_first_words(shell, server, recorder):
    server.add(answer("Day 3 had 21 units.", progress=LONG_PROMPT_PROGRESS))
    shell.run_cell_magic("chat", "", "How much rain fell on day 3?")
    shown = [r.data.get("text/plain") or r.data.get("text/markdown", "") for r in recorder.records]
    reports = [i for i, text in enumerate(shown) if text.startswith("reading the prompt:")]
    assert [shown[i] for i in reports] == [
        "reading the prompt: 2,048 / 5,670 tokens…", "reading the prompt: 4,096 / 5,670 tokens…"
    ]
    assert shown[reports[-1] + 1] == "Day "  # the first words replace it at once
    assert recorder.answer_text() == "Day 3 had 21 units."
    assert not any("reading the prompt" in str(state) for state in recorder.final_states())


def test_a_prompt_read_within_a_second_shows_no_progress(shell, server, recorder):
    quick = [progress_chunk(0, 900, time_ms=0), progress_chunk(900, 900, time_ms=600)]
    server.add(answer("Paris.", progress=quick))
    shell.run_cell_magic("chat", "", "What is the capital of France?")
    assert not any("reading the prompt" in str(r.data) for r in recorder.records)
    assert recorder.answer_text() == "Paris."


def test_the_newline_ipython_adds_to_a_cell_is_not_sent(shell, server, recorder):
    server.add(answer("Paris."), answer("Rome."))
    shell.run_cell("%%chat\nWhat is the capital of France?")
    assert last_user_content(server) == "What is the capital of France?"
    shell.run_cell("%%chat\nA question\n\nwith a blank line at its end\n\n")
    assert last_user_content(server) == "A question\n\nwith a blank line at its end\n"


def test_config_model_and_cell_options_reach_the_request(shell, server, recorder):
    shell.run_line_magic("config", "NbChat.model = 'configured-model'")
    server.add(answer("one"), answer("two"))
    shell.run_cell_magic("chat", "", "first")
    shell.run_cell_magic("chat", "-m cell-model --max-tokens 33 -t 0.25 --system 'Be terse.'", "second")
    first, second = (r.json for r in server.chat_requests)
    assert first["model"] == "configured-model"
    assert (second["model"], second["max_tokens"], second["temperature"]) == ("cell-model", 33, 0.25)
    assert second["messages"][0] == {"role": "system", "content": "Be terse."}


def test_streaming_updates_one_display_at_most_every_interval(shell, server, recorder):
    text = "".join(f"w{i} " for i in range(60))
    server.add(answer(text, piece_chars=3, pause_s=0.01))
    shell.run_line_magic("config", "NbChat.stream_update_interval = 0.05")
    started = time.monotonic()
    shell.run_cell_magic("chat", "", "stream please")
    elapsed = time.monotonic() - started
    answer_displays = [r for r in recorder.displays() if "text/markdown" in r.data]
    assert len(answer_displays) == 1
    display_id = answer_displays[0].display_id
    updates = recorder.updates()
    assert updates and all(u.display_id == display_id for u in updates)
    assert len(updates) <= elapsed / 0.05 + 2
    assert len(updates) >= 3  # it really streamed, not one final draw
    assert any(len(u.data["text/markdown"]) < len(text) for u in updates[:-1])
    assert all("text/plain" not in u.data for u in updates[:-1])  # the twin comes once, at the end
    assert updates[-1].data == {"text/markdown": text, "text/plain": text}
    gaps = [b.at_s - a.at_s for a, b in zip(updates, updates[1:-1])]
    assert all(gap >= 0.045 for gap in gaps)


def test_the_footer_shows_model_prompt_cached_new_tokens_speed_and_cost(shell, server, recorder):
    server.add(answer("Fine.", prompt_tokens=1200, cached_tokens=1000, completion_tokens=3, cost=0.0012))
    shell.run_cell_magic("chat", "", "How are you?")
    footer = recorder.footer_text()
    assert footer.startswith("scripted-model · ")
    assert "prompt 1,200 tok (1,000 cached, 200 new)" in footer
    assert "3 new tok" in footer and "tok/s" in footer and "$0.0012" in footer
    footers = recorder.footers()
    assert len(footers) == 1 and "nbchat-footer" in footers[0].data["text/html"]
    assert recorder.records.index(footers[0]) == len(recorder.records) - 1


def test_a_missing_file_fails_the_cell_with_every_named_error_and_no_traceback(shell, server, tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("fine")
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic(
            "chat", f"-f {good} -f {tmp_path}/missing.txt -f {tmp_path}/gone.pdf --df nothing_here", "q"
        )
    message = str(raised.value)
    assert "missing.txt" in message and "gone.pdf" in message and "nothing_here" in message
    assert "3 attachments could not be used" in message
    assert "nothing was sent" in message
    assert server.chat_requests == []
    capsys.readouterr()
    shell.run_cell(f"%%chat -f {tmp_path}/missing.txt\nq")
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "missing.txt" in shown and "Traceback" not in shown and "AttachmentsError" not in shown


def test_a_dry_run_shows_messages_and_token_report_and_writes_nothing(shell, server, recorder, tmp_path, _private_database):
    notes = tmp_path / "notes.txt"
    notes.write_text("The launch code is 4711.\n" * 20)
    server.add(answer("first answer"))
    shell.run_cell_magic("chat", "", "hello")
    before = row_counts(_private_database)
    requests = len(server.chat_requests)
    view = shell.run_cell_magic("chat", f"--dry-run -f {notes}", "What is the launch code?")
    assert isinstance(view, DryRunView)
    assert row_counts(_private_database) == before
    assert len(server.chat_requests) == requests
    assert [m["role"] for m in view.messages] == ["system", "user", "assistant", "user"]
    assert "The launch code is 4711." in view.messages[-1]["content"]
    assert view.report.attachments[0].name == "notes.txt"
    # The scripted llama-server templated and counted the whole prompt: its total is exact.
    assert view.report.exact and view.report.parts_exact
    assert f"total {view.report.total_tokens:,} of" in view.report.as_text()
    bundle = view._repr_mimebundle_()
    assert "Token report" in bundle["text/plain"] and "notes.txt" in bundle["text/plain"]
    assert "nothing was sent" in bundle["text/markdown"]


def test_a_dry_run_lists_the_passages_of_a_large_file_and_why(shell, server, recorder, tmp_path):
    from needles import needle_document

    document = needle_document()
    report = tmp_path / "report.txt"
    report.write_text(document.text)
    view = shell.run_cell_magic("chat", f"--dry-run -f {report}", document.facts[7].question)
    text = view._repr_mimebundle_()["text/plain"]
    assert "  passage lines 1-" in text and "(head)" in text
    assert "(matched: loading, bays, oxhollow, warehouse)" in text
    assert "report.txt: lines 1-" in text and "ask about other parts" in text
    assert document.facts[7].sentence.rstrip(".") in view.messages[-1]["content"]


def test_a_dry_run_on_a_server_without_a_tokenizer_labels_its_total_an_estimate(shell, server):
    shell.run_line_magic("config", "NbChat.backend = 'openai'")
    view = shell.run_cell_magic("chat", "--dry-run", "What is the launch code?")
    assert not view.report.exact and not view.report.parts_exact
    text = view._repr_mimebundle_()["text/plain"]
    assert f"total ~{view.report.total_tokens:,} of" in text
    assert "an estimate" in text and "each counted alone, estimated" in text
    assert not any(r.path.endswith(("/tokenize", "/apply-template")) for r in server.requests)


def test_a_dry_run_fences_survive_backticks_in_the_content(shell, server, tmp_path):
    code = tmp_path / "snippet.md"
    code.write_text("````\nnested ``` fence\n````\n")
    view = shell.run_cell_magic("chat", f"--dry-run -f {code}", "Explain")
    markdown = view.as_markdown()
    assert "`````text" in markdown


def test_an_unreachable_server_fails_the_cell_and_suggests_starting_the_engine(shell, recorder, _private_database):
    shell.run_line_magic("config", f"NbChat.base_url = {dead_url()!r}")
    with pytest.raises(UsageError, match="%chat engine start"):
        shell.run_cell_magic("chat", "", "anyone there?")
    assert recorder.records == []
    assert row_counts(_private_database).get("messages", 0) == 0


def test_a_server_gone_within_the_health_check_cache_reads_as_not_running_and_stores_nothing(
    shell, recorder, _private_database
):
    """The engine dies right after a turn: the next cell, within the 5 s its health
    check is trusted, meets a refused connection. Same message as a failed health
    check; the question was never sent, so nothing is stored."""
    from nbchat.backends.llama import LlamaServerBackend
    from sse_server import ScriptedServer

    with ScriptedServer(answer("First answer.")) as server:
        shell.run_line_magic("config", f"NbChat.base_url = {server.url!r}")
        shell.run_line_magic("config", "NbChat.backend = 'llama'")
        shell.run_cell_magic("chat", "", "first question")
        url = server.url
    # The port now refuses connections; the health check of the turn above is still trusted.
    stored_before = messages_of(_private_database, shell)
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("chat", "", "second question")
    with pytest.raises(BackendUnreachable) as health_check:
        LlamaServerBackend(url).check_ready()
    assert str(raised.value) == str(health_check.value)
    assert str(raised.value).startswith(f"No llama-server is running at {url}")
    assert messages_of(_private_database, shell) == stored_before
    assert [m.content for m in stored_before] == ["first question", "First answer."]


def test_a_refused_request_fails_the_cell_with_the_servers_reason_and_no_key(shell, recorder):
    key = "sk-or-v1-FAKE9999999999999999999999999999"
    from sse_server import ScriptedServer

    with ScriptedServer(json_reply(401, {"error": {"message": f"bad key {key}", "code": 401}})) as srv:
        shell.run_line_magic("config", f"NbChat.base_url = {srv.url!r}")
        shell.run_line_magic("config", "NbChat.backend = 'openai'")
        shell.run_cell(f"%config NbChat.openai_api_key = {key!r}")
        with pytest.raises(UsageError) as raised:
            shell.run_cell_magic("chat", "", "hi")
    assert key not in str(raised.value)
    assert "401" in str(raised.value) or "key" in str(raised.value).lower()
    assert all(key not in str(r.data) for r in recorder.records)
    assert recorder.final_states() == [{"text/plain": ""}]  # the placeholder was cleared


def test_a_stream_that_breaks_keeps_the_partial_answer_and_shows_the_problem(shell, server, recorder, _private_database):
    server.add(sse_reply(delta_chunk("Half an "), delta_chunk("answer"), drop=True))
    shell.run_cell_magic("chat", "", "tell me everything")
    assert recorder.answer_text() == "Half an answer"
    footer = recorder.footers()[-1]
    assert "nbchat-problem" in footer.data["text/html"]
    assert "partial answer" in footer.data["text/plain"]
    stored = messages_of(_private_database, shell)
    assert (stored[-1].status, stored[-1].content) == ("partial", "Half an answer")


@pytest.fixture
def python_handles_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt, as in any interactive session, even when the test
    run was started in the background (a shell then ignores SIGINT for it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_when(seen, *, signal_main_thread=False, timeout_s=60.0):
    """Interrupt the main thread as Ctrl-C would, once ``seen()`` is true (polled).

    ``signal_main_thread`` sends a real SIGINT to the main thread, which also breaks a
    blocking socket read; otherwise ``_thread.interrupt_main`` (Python's own flag).
    Returns the watcher, to ``join``; ``fired`` says whether it interrupted.
    """
    main = threading.main_thread().ident
    stop = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and time.monotonic() < deadline:
            if seen():
                if signal_main_thread:
                    signal.pthread_kill(main, signal.SIGINT)
                else:
                    _thread.interrupt_main()
                watcher.fired = True
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.fired = False
    watcher.stop = stop
    watcher.start()
    return watcher


def test_an_interrupt_during_the_stream_keeps_the_partial_answer_and_the_shell_works(shell, server, recorder, _private_database, python_handles_ctrl_c):
    text = "".join(f"token{i} " for i in range(200))
    server.add(answer(text, piece_chars=7, pause_s=0.02))
    recorder_drew_text = lambda: any("token0" in r.data.get("text/markdown", "") for r in recorder.updates())
    watcher = interrupt_when(recorder_drew_text)
    try:
        shell.run_cell_magic("chat", "", "a long story please")
    finally:
        watcher.stop.set()
        watcher.join()
    assert watcher.fired
    stored = messages_of(_private_database, shell)
    assert stored[-1].role == "assistant" and stored[-1].status == "partial"
    assert stored[-1].content and text.startswith(stored[-1].content) and stored[-1].content != text
    assert recorder.answer_text() == stored[-1].content
    assert "partial answer (interrupted" in recorder.footer_text()
    assert server.wait_for_disconnect(timeout_s=5)
    # The shell and the conversation go on.
    server.add(answer("Still here."))
    shell.run_cell_magic("chat", "", "are you still there?")
    assert recorder.answer_text() == "Still here."
    sent = server.chat_requests[-1].json["messages"]
    assert sent[-2] == {"role": "assistant", "content": stored[-1].content}


@pytest.mark.parametrize("stage", ["counting tokens", "health check", "waiting for the server"])
def test_an_interrupt_before_the_server_has_the_question_shows_one_line_and_stores_nothing(
    shell, server, recorder, _private_database, stage, capsys, python_handles_ctrl_c
):
    """Ctrl-C during preparation (a slow /tokenize), the health check or before the
    server answered the request: one line, nothing stored, nothing raised."""
    if stage == "counting tokens":
        server.tokenize_delay_s = 30
        seen = lambda: server.requests_to("/tokenize")
    elif stage == "health check":
        server.health_delay_s = 30
        seen = lambda: server.requests_to("/health")
    else:
        server.add(answer("never shown", delay_s=30))
        seen = lambda: server.chat_requests
    watcher = interrupt_when(seen, signal_main_thread=True)
    started = time.monotonic()
    try:
        shell.run_cell_magic("chat", "", "a question that never reaches the model")
    finally:
        watcher.stop.set()
        watcher.join()
    assert watcher.fired and time.monotonic() - started < 20  # the interrupt broke the wait
    shown = [r for r in recorder.final_states() if r.get("text/plain")]
    assert [r["text/plain"] for r in shown] == [
        "⚠ Interrupted before the question was sent; nothing was stored."
    ]
    assert "Traceback" not in capsys.readouterr().err
    assert row_counts(_private_database).get("messages", 0) == 0
    # The shell and the conversation go on.
    server.tokenize_delay_s = server.health_delay_s = 0
    server.add(answer("Fine, now."))
    shell.run_cell_magic("chat", "", "and now?")
    assert recorder.answer_text() == "Fine, now."
    assert [m.content for m in messages_of(_private_database, shell)] == ["and now?", "Fine, now."]


class PublisherActingOnUpdate(RecordingPublisher):
    """Runs ``action`` once, on the given update of the answer's display."""

    def __init__(self, on_update, action):
        super().__init__()
        self.on_update = on_update
        self.action = action

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        super().publish(data, metadata, transient=transient, update=update)
        if update and len(self.updates()) == self.on_update:
            self.action()


def press_ctrl_c():
    """Ctrl-C while drawing."""
    raise KeyboardInterrupt


def ask_for_a_long_answer_acting_on_update(shell, server, database, action):
    """Asks for a 100-piece answer and runs ``action`` on the answer's second drawing;
    returns the publisher, the full answer and the stored answer."""
    publisher = PublisherActingOnUpdate(2, action)
    shell.display_pub = publisher
    shell.run_line_magic("config", "NbChat.stream_update_interval = 0")
    text = "".join(f"piece{i} " for i in range(100))
    server.add(answer(text, piece_chars=6, pause_s=0.005))
    shell.run_cell_magic("chat", "", "go on")
    return publisher, text, messages_of(database, shell)[-1]


def test_an_interrupt_while_drawing_also_keeps_the_partial_answer(shell, server, _private_database):
    publisher, text, stored = ask_for_a_long_answer_acting_on_update(
        shell, server, _private_database, press_ctrl_c)
    assert stored.status == "partial" and stored.content and text.startswith(stored.content)
    assert stored.content != text
    assert publisher.answer_text() == stored.content
    assert "partial answer (interrupted" in publisher.footer_text()
    assert server.wait_for_disconnect(timeout_s=5)


class CtrlCInAFinalizer:
    """An object whose finalizer is running when Ctrl-C arrives: Python runs the
    handler there, and can only print "Exception ignored" — the interrupt is gone."""

    def __del__(self):
        _thread.interrupt_main()
        total = 0
        for step in range(200_000):
            total += step


def drop_a_finalizer_that_gets_ctrl_c():
    """A :class:`CtrlCInAFinalizer` made and dropped (its ``__del__`` runs now), as a
    garbage collection of some library's object might happen while the answer is drawn."""
    CtrlCInAFinalizer()


def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_answer(shell, server, _private_database, monkeypatch, python_handles_ctrl_c):
    swallowed = []
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: swallowed.append(unraisable.exc_type))
    publisher, text, stored = ask_for_a_long_answer_acting_on_update(
        shell, server, _private_database, drop_a_finalizer_that_gets_ctrl_c)
    assert swallowed == [KeyboardInterrupt]  # Python did swallow it
    assert stored.status == "partial" and stored.error_kind == "interrupted"
    assert stored.content and text.startswith(stored.content) and stored.content != text
    assert "partial answer (interrupted" in publisher.footer_text()
    assert server.wait_for_disconnect(timeout_s=5)


def test_in_the_terminal_the_answer_is_printed_as_it_arrives(shell, server, capsys):
    server.add(answer("Printed piece by piece.", piece_chars=5))
    shell.run_cell_magic("chat", "", "hi")
    out = capsys.readouterr().out
    assert "Printed piece by piece.\n" in out
    assert "scripted-model · prompt" in out


def test_under_capture_the_answer_is_one_display_with_its_footer(shell, server):
    server.add(answer("Captured answer."))
    shell.run_cell("%%capture captured\n%%chat\nhello")
    captured = shell.user_ns["captured"]
    texts = [o.data.get("text/plain") for o in captured.outputs]
    assert texts[0] == "Captured answer."
    assert "scripted-model" in texts[1] and len(texts) == 2


def test_new_and_session_options_choose_the_conversation(shell, server, recorder):
    server.add(answer("a1"), answer("b1"), answer("a2"))
    shell.run_cell_magic("chat", "-s alpha", "first in alpha")
    shell.run_cell_magic("chat", "--new", "a fresh start")
    fresh = extension.client_for(shell).current_session()
    shell.run_cell_magic("chat", "-s alpha", "second in alpha")
    alpha = extension.client_for(shell).current_session()
    assert alpha.title == "alpha" and fresh.id != alpha.id
    assert [m["content"] for m in server.chat_requests[-1].json["messages"][1:]] == [
        "first in alpha", "a1", "second in alpha"
    ]
    assert len(server.chat_requests[1].json["messages"]) == 2  # --new: system + question


def test_no_history_sends_only_the_question(shell, server, recorder):
    server.add(answer("one"), answer("two"))
    shell.run_cell_magic("chat", "", "remember me")
    shell.run_cell_magic("chat", "--no-history", "standalone")
    assert [m["role"] for m in server.chat_requests[-1].json["messages"]] == ["system", "user"]


def test_a_notebook_reopened_in_a_new_kernel_continues_its_session(shell, server, recorder):
    shell.user_ns["__session__"] = "/lab/reopen.ipynb"
    server.add(answer("noted"), answer("yes"))
    shell.run_cell_magic("chat", "", "my name is Ada")
    shell.run_line_magic("unload_ext", "nbchat")  # a restarted kernel has a new client
    shell.run_line_magic("load_ext", "nbchat")
    shell.run_line_magic("config", f"NbChat.base_url = {server.url!r}")
    shell.run_cell_magic("chat", "", "what is my name?")
    contents = [m["content"] for m in server.chat_requests[-1].json["messages"]]
    assert contents[1:] == ["my name is Ada", "noted", "what is my name?"]


def test_recall_is_accepted_and_a_dry_run_with_it_sends_nothing(shell, server, recorder):
    server.add(answer("We said hello."))
    shell.run_cell_magic("chat", "", "hello there")
    view = shell.run_cell_magic("chat", "--recall --dry-run", "what did we say?")
    assert isinstance(view, DryRunView)
    assert view.messages[-1]["content"].endswith("what did we say?")
    assert len(server.chat_requests) == 1


def test_a_long_stream_sends_a_bounded_multiple_of_the_answers_bytes(shell, recorder):
    from nbchat.notebook.render import AnswerView

    now = [0.0]
    view = AnswerView(shell, 0.05, clock=lambda: now[0], mode="live")
    view.start()
    pieces = [f"word{i % 97} " for i in range(2000)]  # about 2,000 tokens at 50 tok/s
    for piece in pieces:
        now[0] += 0.02
        view.add(piece)
    view.finish()
    answer_bytes = len("".join(pieces).encode())
    sent = sum(len(value.encode()) for u in recorder.updates() for value in u.data.values())
    assert sent <= 25 * answer_bytes, sent / answer_bytes
    assert len(recorder.updates()) >= 40  # it still streamed all along


# -- defects of issue 14 -----------------------------------------------------------------


def _point_every_backend_at(shell, server, monkeypatch):
    """The scripted server stands in for llama-server, OpenRouter and an OpenAI server."""
    for name in ("NBCHAT_MODEL", "OPENROUTER_API_KEY", "NBCHAT_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    shell.run_line_magic("config", f"NbChat.openrouter_url = '{server.url}/api/v1'")
    shell.run_cell(f'%config NbChat.api_key = "{FAKE_OPENROUTER_KEY}"')


@pytest.mark.parametrize(
    ("backend", "default_model"),
    [("llama", None), ("openrouter", "openrouter/auto"), ("openai", None)],
)
def test_a_per_cell_model_does_not_stick_to_later_cells(
    shell, server, recorder, monkeypatch, backend, default_model
):
    _point_every_backend_at(shell, server, monkeypatch)
    server.add(answer("one"), answer("two"), answer("three"))
    shell.run_cell_magic("chat", f"-b {backend} -m picked/model-a", "first")
    first_footer = recorder.footer_text()
    shell.run_cell_magic("chat", f"-b {backend}", "second")
    second_footer = recorder.footer_text()
    shell.run_cell_magic("chat", f"-b {backend} -m picked/model-b", "third")
    first, second, third = (r.json for r in server.chat_requests)
    assert first["model"] == "picked/model-a"
    assert second.get("model") == default_model  # None: the request names no model
    assert third["model"] == "picked/model-b"
    # The footer names the model each request named (llama-server: the one it runs).
    assert first_footer.startswith("picked/model-a · ")
    assert "picked/model-a" not in second_footer
    shown = default_model or ("scripted-model" if backend == "llama" else None)
    if shown:
        assert second_footer.startswith(f"{shown} · ")
    assert recorder.footer_text().startswith("picked/model-b · ")


def test_max_tokens_over_the_context_window_says_so_with_both_figures(shell, server, recorder):
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("chat", "--max-tokens 999999", "A short question.")
    message = str(raised.value)
    assert f"max_tokens (999,999) exceeds the model's context window ({server.n_ctx:,} tokens)" in message
    assert "question alone" not in message and "-9" not in message
    assert server.chat_requests == []


@pytest.mark.parametrize("value", ["50", "-1", "2.5", "nan"])
def test_a_temperature_outside_0_to_2_is_refused_before_anything_is_sent(
    shell, server, recorder, value, _private_database
):
    before = row_counts(_private_database) if _private_database.exists() else {}
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("chat", f"-t {value}", "Be creative.")
    assert "-t/--temperature must be between 0 and 2" in str(raised.value)
    assert server.chat_requests == []
    after = row_counts(_private_database) if _private_database.exists() else {}
    assert after.get("messages", 0) == before.get("messages", 0)
    server.add(answer("ok"))
    shell.run_cell_magic("chat", "-t 2", "The edge is fine.")
    assert server.chat_requests[0].json["temperature"] == 2.0


def test_a_quoted_pattern_in_f_attaches_its_matching_files_sorted(shell, server, recorder, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    (folder / "b.txt").write_text("Bravo file text.")
    (folder / "a.txt").write_text("Alpha file text.")
    (folder / "c.md").write_text("Charlie is not a txt.")
    # A directory suggests a pattern; the suggestion works as given.
    with pytest.raises(UsageError) as refused:
        shell.run_cell_magic("chat", f"-f {folder}", "Read them.")
    suggested = re.search(r"'([^']+\*\.pdf)'", str(refused.value)).group(1)
    assert suggested == f"{folder}/*.pdf"
    make_text_pdf(folder, "d.pdf", ["Delta PDF text."])
    server.add(answer("ok"), answer("ok"))
    shell.run_cell_magic("chat", f"-f '{suggested}'", "Read the PDFs.")
    assert "Delta PDF text." in last_user_content(server)
    shell.run_cell_magic("chat", f"-f '{folder}/*.txt'", "Read the notes.")
    sent = last_user_content(server)
    assert sent.index("Alpha file text.") < sent.index("Bravo file text.")
    assert "Charlie" not in sent


def test_a_pattern_that_matches_no_file_is_an_error_naming_the_pattern(shell, server, tmp_path):
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("chat", f"-f '{tmp_path}/*.docx'", "Read them.")
    assert f"{tmp_path}/*.docx: matches no file." in str(raised.value)
    assert server.chat_requests == []
