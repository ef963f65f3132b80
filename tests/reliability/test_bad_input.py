"""Every case of the bad-input corpus, sent through ``nbchat.chat`` to a real local server.

A bad input gets a named error whose message names the file and the fix, with no
traceback or internal class name in it, nothing is sent to the model, and the
database is unchanged to the byte. An input that is odd but usable goes through with
the right text in the prompt and the user's words stored exactly as written.
"""

from __future__ import annotations

import pytest

import nbchat
from corpus import CASES, ERROR_CASES, TEXT_CASES, Case
from dbcheck import INTERNAL_NAMES, snapshot


def test_the_corpus_has_at_least_thirty_cases_with_distinct_names():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
    assert len(ERROR_CASES) >= 30 and len(TEXT_CASES) >= 10


@pytest.fixture
def conversation(fast_server, db_path):
    """A session with one stored turn, so a bad input lands in a real conversation."""
    first = nbchat.chat("Hello, remember this.", base_url=fast_server.url)
    assert first.status == "complete"
    return first


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
def test_a_bad_input_gets_a_named_error_and_changes_nothing(case: Case, conversation, fast_server,
                                                          db_path, tmp_path):
    attempt = case.build(tmp_path)
    before = snapshot(db_path)
    sent_before = len(fast_server.chat_requests)
    with attempt.during():
        with pytest.raises(case.error) as caught:
            nbchat.chat(attempt.prompt, attempt.files, base_url=fast_server.url, **attempt.options)
    assert type(caught.value) is case.error
    message = str(caught.value)
    for phrase in case.says:
        assert phrase in message, f"{phrase!r} missing from: {message}"
    for name in attempt.names:
        assert name in message, f"the message does not name {name!r}: {message}"
    assert not INTERNAL_NAMES.search(message), message
    assert len(fast_server.chat_requests) == sent_before, "something was sent to the model"
    assert snapshot(db_path) == before, "the database changed"


@pytest.mark.parametrize("case", TEXT_CASES, ids=lambda c: c.id)
def test_an_odd_but_usable_input_goes_through_with_the_right_text(case: Case, conversation,
                                                                 fast_server, db_path, tmp_path):
    attempt = case.build(tmp_path)
    before = snapshot(db_path)
    result = nbchat.chat(attempt.prompt, attempt.files, base_url=fast_server.url, **attempt.options)
    assert result.status == "complete"
    sent = fast_server.chat_requests[-1].json["messages"][-1]["content"]
    for phrase in case.sent:
        assert phrase in sent, f"{phrase!r} was not sent"
    for phrase in case.not_sent:
        assert phrase not in sent, f"{phrase!r} should not have been sent"
    from nbchat.api import default_client

    question, answer = default_client().store.messages(result.session_id)[-2:]
    assert question.content == attempt.prompt  # exactly as the user wrote it
    assert answer.content == result.text and answer.status == "complete"
    assert snapshot(db_path) != before  # the comparison the error cases rely on sees writes


def _magic_cases() -> list[Case]:
    """The error cases a notebook user can type as ``%%chat -f PATH``."""
    return [case for case in ERROR_CASES if case.id not in NOT_TYPABLE]


# Not a path (a stored-file spec, a number), an option, or root's capability trick.
NOT_TYPABLE = {"unknown-stored-file", "not-a-file-object", "unknown-backend",
               "over-configured-size-limit", "no-read-permission"}


def test_in_a_kernel_each_bad_file_shows_its_message_without_a_traceback(fast_server, db_path,
                                                                        tmp_path):
    import shlex

    import nbformat
    from nbclient import NotebookClient

    cases = _magic_cases()
    cells = [f"%load_ext nbchat\n%config NbChat.base_url = {fast_server.url!r}",
             "%%chat\nHello, remember this."]
    attempts = []
    for case in cases:
        folder = tmp_path / case.id
        folder.mkdir()
        attempt = case.build(folder)
        attempts.append(attempt)
        options = " ".join(f"-f {shlex.quote(str(f))}" for f in attempt.files)
        cells.append(f"%%chat {options}\n{attempt.prompt}")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index in (0, 1):
            client.execute_cell(notebook.cells[index], index)
        before = snapshot(db_path)
        sent_before = len(fast_server.chat_requests)
        for index in range(2, len(cells)):
            client.execute_cell(notebook.cells[index], index)
        after = snapshot(db_path)
    assert after == before and len(fast_server.chat_requests) == sent_before
    for case, attempt, cell in zip(cases, attempts, notebook.cells[2:]):
        assert [o.output_type for o in cell.outputs if o.output_type == "error"] == [], case.id
        shown = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert shown.startswith("UsageError: "), (case.id, shown)
        assert "Traceback" not in shown and not INTERNAL_NAMES.search(shown[len("UsageError: "):])
        for phrase in (*case.says, *attempt.names):
            assert phrase in shown, (case.id, phrase, shown)
