"""``--df``, ``--var`` and ``--nb``: the notebook's own objects as attachments."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError

from notebook_helpers import last_user_content
from sse_server import answer

FAKE_KEY = "sk-or-v1-FAKEabcdefabcdefabcdefabcdefabcdef01"


@pytest.fixture
def sales():
    return pd.DataFrame(
        {
            "region": ["north", "south", "north", "east", None],
            "units": [10, 25, 7, 12, 30],
            "price": [2.5, 3.0, 2.5, None, 4.0],
        }
    )


def test_a_dataframe_is_attached_as_a_summary(shell, server, recorder, sales):
    shell.user_ns["sales"] = sales
    server.add(answer("North sells least."))
    shell.run_cell_magic("chat", "--df sales", "Which region sells least?")
    sent = last_user_content(server)
    assert "DataFrame `sales` (pandas): 5 rows × 3 columns" in sent
    assert "`price` float64 · nulls 20.0%" in sent
    assert "| region | units | price |" in sent
    assert "Numeric columns (describe)" in sent
    assert sent.endswith("Which region sells least?")


def test_a_changed_dataframe_is_noticed_in_the_next_footer_with_how_to_reattach(shell, server, recorder, sales):
    shell.user_ns["sales"] = sales
    server.add(answer("one"), answer("two"), answer("three"), answer("four"))
    shell.run_cell_magic("chat", "--df sales", "Summarise sales.")
    shell.run_cell_magic("chat", "", "And now?")
    assert "has changed" not in recorder.footer_text()
    sales.loc[0, "units"] = 1000
    shell.run_cell_magic("chat", "", "Anything new?")
    footer = recorder.footer_text()
    assert "DataFrame sales has changed since it was attached on turn 1" in footer
    assert "--df sales" in footer
    view = shell.run_cell_magic("chat", "--dry-run", "Dry?")
    assert any("sales has changed" in notice for notice in view.notices)
    shell.run_cell_magic("chat", "--df sales", "Here it is again.")
    assert "has changed" not in recorder.footer_text()
    assert "| north | 1000 | 2.5 |" in last_user_content(server)


def test_a_variable_is_attached_by_its_repr(shell, server, recorder):
    shell.user_ns["params"] = {"alpha": 0.5, "layers": [64, 32]}
    server.add(answer("ok"))
    shell.run_cell_magic("chat", "--var params", "Are these sensible?")
    sent = last_user_content(server)
    assert "Variable `params` (type dict, length 2), its repr:" in sent
    assert "{'alpha': 0.5, 'layers': [64, 32]}" in sent


def test_df_on_something_that_is_not_a_dataframe_suggests_var(shell, server):
    shell.user_ns["numbers"] = [1, 2, 3]
    with pytest.raises(UsageError, match="--var numbers"):
        shell.run_cell_magic("chat", "--df numbers", "hi")
    assert server.chat_requests == []


def test_nb_attaches_this_notebooks_cells_and_masks_keys(shell, server, recorder):
    shell.run_cell("answer_value = 41 + 1", store_history=True)
    shell.run_cell("print('hello from a cell')", store_history=True)
    shell.run_cell("answer_value", store_history=True)
    shell.run_cell(f"%config NbChat.api_key = {FAKE_KEY!r}", store_history=True)
    server.add(answer("A notebook about 42."))
    result = shell.run_cell("%%chat --nb\nWhat does this notebook do?", store_history=True)
    assert result.success
    sent = last_user_content(server)
    assert "answer_value = 41 + 1" in sent
    assert "print('hello from a cell')" in sent
    assert "hello from a cell" in sent.split("print('hello from a cell')", 1)[1]
    assert "42" in sent
    assert FAKE_KEY not in sent and "[redacted]" in sent
    assert "What does this notebook do?" not in sent.split("=== END", 1)[0]
