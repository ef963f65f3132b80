"""Notebook-native help on a real IPython shell: explain the last error, attach cells
by number, put an answer's code into the next cell, and the panel's error action."""

from __future__ import annotations

from typing import Any

import pytest
from notebook_helpers import last_user_content
from sse_server import answer

from nbchat.core.failure import EXPLAIN_ERROR_QUESTION
from nbchat.notebook.cells import NO_ERROR_YET
from nbchat.notebook.extension import recorder_for

FAKE_KEY = "sk-or-v1-PLANTEDfeedfacefeedface0123"
FAILING = f"def load(path):\n    token = '{FAKE_KEY}'\n    return open(path)\nload('/no/such/file.csv')"
ANSWER_WITH_CODE = (
    "Use this:\n\n```python\nimport pandas as pd\nprint({'a': 1})\n```\n\n"
    "or this:\n\n```python\nx = [i ** 2 for i in range(3)]\n```\n"
)


@pytest.fixture(autouse=True)
def _fresh_history(shell: Any) -> Any:
    """These tests run many numbered cells in the shared test shell; start the next test
    with an empty history (as a new kernel would), so ``--nb`` elsewhere stays small."""
    yield
    shell.history_manager.reset(new_session=True)
    shell.execution_count = 1


def run(shell: Any, source: str) -> Any:
    return shell.run_cell(source, store_history=True)


def user_text(view: Any) -> str:
    return view.messages[-1]["content"]


def test_with_no_error_yet_one_line_says_so_and_nothing_is_sent(shell, server, capsys):
    result = run(shell, "%chat error")
    assert result.success
    assert capsys.readouterr().out.strip() == NO_ERROR_YET
    assert server.chat_requests == []


def test_error_dry_run_shows_the_exception_the_masked_traceback_and_the_cell(shell, server):
    failing = run(shell, FAILING)
    number = failing.execution_count
    view = run(shell, "%chat error --dry-run").result
    text = user_text(view)
    assert "Exception: FileNotFoundError: [Errno 2] No such file or directory: '/no/such/file.csv'" in text
    assert f"Cell In[{number}], line 4" in text and "----> 4 load('/no/such/file.csv')" in text
    assert f"In [{number}]:\ndef load(path):" in text
    assert FAKE_KEY not in text and "token = '[redacted]'" in text
    assert "\x1b[" not in text
    assert text.endswith(EXPLAIN_ERROR_QUESTION)
    assert [(p.name, p.kind) for p in view.report.attachments] == [(f"error In[{number}]", "error")]
    assert server.chat_requests == []


def test_nbchats_own_usage_errors_are_not_the_last_error(shell, server):
    run(shell, "1 / 0")
    bad = run(shell, "%%chat --no-such-option\nhello")
    assert not bad.success
    bad = run(shell, "%chat error 999")
    assert not bad.success and "In[999] raised no error" in str(bad.error_in_exec)
    text = user_text(run(shell, "%chat error --dry-run").result)
    assert "ZeroDivisionError: division by zero" in text


def test_an_error_by_cell_number_and_a_cell_that_did_not_fail(shell, server):
    first = run(shell, "raise KeyError('first')").execution_count
    ok = run(shell, "x = 1").execution_count
    run(shell, "raise ValueError('second')")
    assert "KeyError: 'first'" in user_text(run(shell, f"%chat error {first} --dry-run").result)
    result = run(shell, f"%chat error {ok} --dry-run")
    assert f"In[{ok}] raised no error" in str(result.error_in_exec)


def test_the_cell_magic_asks_its_own_question_about_the_error(shell, server):
    run(shell, "int('seven')")
    text = user_text(run(shell, "%%chat --error --dry-run\nWhy does {int} fail here?").result)
    assert "ValueError: invalid literal for int() with base 10: 'seven'" in text
    assert text.rstrip().endswith("Why does {int} fail here?")


def test_the_error_is_sent_and_the_answer_streams(shell, server, recorder):
    run(shell, "[][1]")
    server.add(answer("The list is empty."))
    assert run(shell, "%chat error").success
    sent = last_user_content(server)
    assert "IndexError: list index out of range" in sent and sent.endswith(EXPLAIN_ERROR_QUESTION)
    assert recorder.answer_text() == "The list is empty."


def test_a_failure_is_recorded_only_while_the_extension_is_loaded(shell):
    recorder = recorder_for(shell)
    run(shell, "1 / 0")
    assert recorder.last_failure is not None and recorder.last_failure.type_name == "ZeroDivisionError"
    shell.run_line_magic("unload_ext", "nbchat")
    assert recorder.post_run_cell not in shell.events.callbacks["post_run_cell"]
    shell.run_line_magic("load_ext", "nbchat")


def test_cells_by_number_and_range_are_attached_with_their_outputs(shell, server):
    first = run(shell, "print('three')").execution_count
    run(shell, "'four'")
    run(shell, "import sys; print('five', file=sys.stderr)")
    view = run(shell, f"%%chat --dry-run --cell {first}-{first + 2}\nWhat do {{In[3]}} and {{x}} do?").result
    names = [p.name for p in view.report.attachments]
    assert names == [f"In[{first + i}]" for i in range(3)]
    text = user_text(view)
    assert f"In [{first}]:\nprint('three')\n\nOut [{first}]:\nthree" in text
    assert f"Out [{first + 1}]:\n'four'" in text and f"Out [{first + 2}]:\nfive" in text
    assert text.rstrip().endswith("What do {In[3]} and {x} do?")  # literal, never formatted


def test_a_failing_cell_attached_by_number_shows_its_error(shell, server):
    number = run(shell, "{}['missing']").execution_count
    text = user_text(run(shell, f"%%chat --dry-run --cell {number}\nWhy?").result)
    assert "KeyError: 'missing'" in text


def test_a_cell_that_has_not_run_and_a_bad_range_are_named_errors(shell, server):
    result = run(shell, "%%chat --dry-run --cell 5000 --var nowhere\nhi")
    message = str(result.error_in_exec)
    assert "In[5000]: has not run in this kernel" in message
    assert "nowhere: is not defined" in message
    result = run(shell, "%%chat --dry-run --cell 7-3\nhi")
    assert "a range goes up" in str(result.error_in_exec)
    result = run(shell, "%%chat --dry-run --cell three\nhi")
    assert "give a cell number (In[N]) or a range such as 3-5" in str(result.error_in_exec)


# -- %chat code --------------------------------------------------------------------------


def test_code_puts_the_last_block_of_the_last_answer_into_the_next_cell(shell, server, recorder, capsys):
    server.add(answer(ANSWER_WITH_CODE))
    assert run(shell, "%%chat\nHow do I square numbers?").success
    shell.rl_next_input = None
    assert run(shell, "%chat code").success
    assert shell.rl_next_input == "x = [i ** 2 for i in range(3)]"
    assert "Code block 2 of 2 of the last answer is in a new cell below." in capsys.readouterr().out
    run(shell, "%chat code 1")
    assert shell.rl_next_input == "import pandas as pd\nprint({'a': 1})"
    run(shell, "%chat code --all")
    assert shell.rl_next_input == (
        "import pandas as pd\nprint({'a': 1})\n\nx = [i ** 2 for i in range(3)]"
    )


def test_code_errors_say_what_is_missing(shell, server, recorder):
    result = run(shell, "%chat code")
    assert "There is no answer in this notebook's session yet" in str(result.error_in_exec)
    server.add(answer("No code here."), answer("```\nonly = 1\n```"))
    run(shell, "%%chat\nhi")
    assert "has no code block" in str(run(shell, "%chat code").error_in_exec)
    run(shell, "%%chat\nagain")
    assert "has 1 code block: there is no block 3" in str(run(shell, "%chat code 3").error_in_exec)
    assert "not both" in str(run(shell, "%chat code 1 --all").error_in_exec)


# -- the panel ---------------------------------------------------------------------------


@pytest.fixture
def panel(shell: Any, server: Any) -> Any:
    from nbchat.notebook.widget import ChatWidget

    shell.user_ns["__session__"] = "help.ipynb"
    widget = ChatWidget()
    assert widget.wait(10)
    yield widget
    widget.wait(10)
    widget.close()


def test_the_panel_follows_the_last_error_and_explains_it(shell, server, panel):
    number = run(shell, FAILING).execution_count
    assert panel.last_error == {
        "cell": number,
        "summary": "FileNotFoundError: [Errno 2] No such file or directory: '/no/such/file.csv'",
    }
    server.add(answer("The file does not exist."))
    panel.handle_message({"type": "explain_error"}, [])
    assert panel.wait(15)
    sent = last_user_content(server)
    assert f"=== BEGIN ERROR error In[{number}]" in sent and FAKE_KEY not in sent
    assert sent.endswith(EXPLAIN_ERROR_QUESTION)
    assert [m["role"] for m in panel.messages] == ["user", "assistant"]
    assert panel.messages[0]["files"] == [f"error In[{number}]"]
    assert panel.error == ""


def test_a_cell_run_without_history_is_explained_without_a_number(shell, server):
    shell.run_cell("raise RuntimeError('unnumbered')", store_history=False)  # as nbval runs cells
    text = user_text(run(shell, "%chat error --dry-run").result)
    assert "=== BEGIN ERROR last error" in text
    assert "Cell:\nraise RuntimeError('unnumbered')" in text
