"""The turn pipeline on a real store and real files, with an in-process backend."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from nbchat.core.attachments import path_spec, text_spec
from nbchat.core.errors import AttachmentsError, BudgetError
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.core.tokens import CachedCounter, EstimateCounter
from nbchat.core.turn import TurnResult, prepare_turn, run_turn

from dbstate import database_state
from inprocess_backend import ScriptedBackend


def send(store, settings, backend, question, specs=(), *, window=8192, session_id=None):
    """One full turn; returns (prepared, result)."""
    session = store.get_session(session_id) if session_id else None
    prepared = prepare_turn(
        store, settings, question, list(specs), session=session, new_session=None,
        counter=CachedCounter(EstimateCounter(), store), window_tokens=window,
    )
    events = list(run_turn(store, backend, prepared))
    result = events[-1]
    assert isinstance(result, TurnResult)
    return prepared, result


def write(tmp_path, name, words):
    path = tmp_path / name
    path.write_text(name + ": " + " ".join(f"word{i}" for i in range(words)), encoding="utf-8")
    return path



def test_each_turns_messages_are_a_prefix_of_the_next_turns(store, settings, tmp_path):
    backend = ScriptedBackend("Noted, here is a short answer.")
    files = [write(tmp_path, f"f{i}.txt", 300) for i in range(4)]
    plan = [("Read these.", files[:2]), ("And?", []), ("One more.", files[2:3]), ("Why?", []),
            ("Last one.", files[3:]), ("Thanks.", [])]
    session_id = None
    for question, turn_files in plan:
        _, result = send(store, settings, backend, question, [path_spec(p) for p in turn_files],
                         session_id=session_id)
        session_id = result.session_id
    for before, after in zip(backend.requests, backend.requests[1:]):
        assert after[: len(before)] == before
        assert after[len(before)] == {"role": "assistant", "content": "Noted, here is a short answer."}
    # The files of turn 1 are still in the last prompt, byte for byte, with no re-injection.
    last = backend.requests[-1]
    assert sum("=== BEGIN FILE f0.txt" in m["content"] for m in last) == 1


def test_the_stored_user_message_is_the_clean_question_and_rendered_is_what_was_sent(store, settings, tmp_path):
    backend = ScriptedBackend()
    path = write(tmp_path, "notes.txt", 50)
    _, result = send(store, settings, backend, "Summarise this.", [path_spec(path)])
    user, answer = store.messages(result.session_id)
    assert user.content == "Summarise this."
    assert user.rendered == backend.requests[0][-1]["content"]
    assert "=== BEGIN FILE notes.txt" in user.rendered and user.rendered.endswith("Summarise this.")
    assert answer.content == "An answer." and answer.status == "complete"
    assert answer.timings == {"prompt_n": 7}


def test_a_bad_attachment_fails_the_whole_prompt_and_leaves_the_database_unchanged(store, settings, tmp_path):
    backend = ScriptedBackend()
    _, first = send(store, settings, backend, "hello")
    good = write(tmp_path, "good.txt", 20)
    before = database_state(store)
    with pytest.raises(AttachmentsError) as caught:
        send(store, settings, backend, "use these",
             [path_spec(good), path_spec(tmp_path / "missing.pdf"), path_spec(tmp_path)],
             session_id=first.session_id)
    message = str(caught.value)
    assert "2 attachments could not be used" in message
    assert "missing.pdf" in message and str(tmp_path) in message
    assert "Traceback" not in message
    assert len(backend.requests) == 1  # nothing was sent
    assert database_state(store) == before
    assert len(store.messages(first.session_id)) == 2


def test_a_file_attached_again_unchanged_is_not_sent_twice(store, settings, tmp_path):
    backend = ScriptedBackend()
    path = write(tmp_path, "report.txt", 200)
    _, first = send(store, settings, backend, "Read it.", [path_spec(path)])
    prepared, _ = send(store, settings, backend, "Read it again.", [path_spec(path)],
                       session_id=first.session_id)
    assert "unchanged since it was attached earlier" in prepared.rendered
    assert "=== BEGIN FILE report.txt" not in prepared.rendered


def test_an_unchanged_file_is_not_read_or_parsed_again(store, settings, tmp_path, monkeypatch):
    import nbchat.core.attachments as attachments
    import nbchat.core.extract as extract

    # A fresh process: nothing read yet (the other store's run of this test read the file).
    monkeypatch.setattr(attachments, "_MEMORY_EXTRACTS", type(attachments._MEMORY_EXTRACTS)())
    monkeypatch.setattr(attachments, "_MEMORY_PATHS", type(attachments._MEMORY_PATHS)())

    calls = []
    real = extract.extract_bytes

    def counting(data, name, **kw):
        calls.append(name)
        return real(data, name, **kw)

    monkeypatch.setattr(extract, "extract_bytes", counting)
    backend = ScriptedBackend()
    path = write(tmp_path, "big.txt", 500)
    _, first = send(store, settings, backend, "one", [path_spec(path)])
    send(store, settings, backend, "two", [path_spec(path)], session_id=first.session_id)
    send(store, settings, backend, "three", [path_spec(path)])  # a new session, same file
    assert calls == [str(path)]


def test_references_in_the_question_resolve_but_never_inside_attached_files(store, settings, tmp_path):
    backend = ScriptedBackend()
    store.add_file("secret.txt", b"the stored secret", sha256=hashlib.sha256(b"the stored secret").hexdigest(),
                   mime="text/plain")
    attached = tmp_path / "code.py"
    attached.write_text("@pytest.fixture\ndef f(): pass\n# see @secret.txt\n", encoding="utf-8")
    prepared, _ = send(store, settings, backend, "Explain @secret.txt and @nothere.md, mail a@b.com",
                       [path_spec(attached)])
    sent = prepared.rendered
    assert sent.count("the stored secret") == 1
    assert "[nothere.md: file not found in the store]" in sent
    assert "# see @secret.txt" in sent and "@pytest.fixture" in sent
    assert "a@b.com" in sent


def test_over_budget_files_are_water_filled_and_cut_visibly(store, tmp_path, settings):
    settings = settings.replace(attachment_budget=3000)
    small = write(tmp_path, "small.txt", 100)
    large = write(tmp_path, "large.txt", 5000)
    prepared, _ = send(store, settings, ScriptedBackend(), "go", [path_spec(small), path_spec(large)])
    parts = {p.name: p for p in prepared.report.attachments}
    assert not parts["small.txt"].truncated
    assert parts["large.txt"].truncated
    assert parts["small.txt"].kept_tokens + parts["large.txt"].kept_tokens <= 3000
    # A file of many chunks sends its head and passages, with the visible note.
    assert "large.txt: line 1 of 1 included (~" in prepared.rendered
    assert "ask about other parts and they will be brought in" in prepared.rendered


def test_compaction_drops_old_turns_in_one_step_and_keeps_their_files(store, settings, tmp_path):
    backend = ScriptedBackend("ok " * 40)
    window = 3000
    settings = settings.replace(max_tokens=200, history_files_budget=800)
    data = write(tmp_path, "data.txt", 300)
    _, result = send(store, settings, backend, "Here is data.", [path_spec(data)], window=window)
    compacted_at = None
    for i in range(30):
        prepared, result = send(store, settings, backend, f"Question {i} " + "filler " * 80,
                                window=window, session_id=result.session_id)
        if prepared.report.dropped_turns:
            compacted_at = i
            break
    assert compacted_at is not None
    first_user = backend.requests[-1][1]["content"]
    assert first_user.startswith("Files shared earlier in this conversation:")
    assert "=== BEGIN FILE data.txt" in first_user
    assert backend.requests[-1][-1]["content"].startswith(f"Question {compacted_at}")
    assert any("History compacted" in n for n in prepared.report.notices)
    assert prepared.report.total_tokens <= window - 200
    # After the compaction the layout is stable again: the next turn extends this one.
    send(store, settings, backend, "after", window=window, session_id=result.session_id)
    before, after = backend.requests[-2], backend.requests[-1]
    assert after[: len(before)] == before


def test_a_question_too_long_for_the_window_is_refused_before_anything_is_written(store, settings):
    before = database_state(store)
    with pytest.raises(BudgetError, match="context window"):
        send(store, settings, ScriptedBackend(), "word " * 20000, window=4096)
    assert database_state(store) == before


def test_a_failed_stream_keeps_the_partial_answer_marked(store, settings):
    backend = ScriptedBackend("This answer will break in the middle.", fail_after=3)
    _, result = send(store, settings, backend, "go")
    assert result.status == "partial"
    assert result.text == "This answer "
    assert result.error_kind == "upstream"
    stored = store.messages(result.session_id)[-1]
    assert (stored.status, stored.content) == ("partial", "This answer ")


def test_closing_the_stream_early_stores_the_partial_answer_once(store, settings):
    backend = ScriptedBackend("A long answer that the user stops early.")
    prepared = prepare_turn(store, settings, "go", [], session=None, new_session=None,
                            counter=CachedCounter(EstimateCounter(), store), window_tokens=8192)
    events = run_turn(store, backend, prepared)
    next(events), next(events)
    events.close()
    session = store.list_sessions()[0]
    messages = store.messages(session.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[-1].status == "partial" and messages[-1].content == "A long a"
    assert messages[-1].error_kind == "interrupted"
    assert backend.closed == 1


def test_dataframe_text_attachments_are_labelled_as_such(store, settings):
    prepared, _ = send(store, settings, ScriptedBackend(), "describe",
                       [text_spec("df", "shape: 3 x 2", label="dataframe")])
    assert "=== BEGIN DATAFRAME df (dataframe" in prepared.rendered


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 60), st.lists(st.integers(10, 400), max_size=2)),
                min_size=2, max_size=7))
def test_prefix_property_holds_for_any_conversation_until_a_compaction(tmp_path_factory, plan):
    tmp = tmp_path_factory.mktemp("conv")
    from nbchat.core.settings import Settings

    settings = Settings(db_path=tmp / "db.sqlite", max_tokens=100)
    with Store(tmp / "db.sqlite") as store:
        backend = ScriptedBackend("short answer")
        session_id = None
        compacted = []
        for index, (words, sizes) in enumerate(plan):
            paths = [write(tmp, f"t{index}_{j}.txt", size) for j, size in enumerate(sizes)]
            prepared, result = send(store, settings, backend, "q " * words,
                                    [path_spec(p) for p in paths], window=2500,
                                    session_id=session_id)
            session_id = result.session_id
            compacted.append(prepared.report.compacted)
            assert prepared.report.total_tokens <= 2500 - 100
        for i, (before, after) in enumerate(zip(backend.requests, backend.requests[1:])):
            if not compacted[i + 1]:
                assert after[: len(before)] == before
