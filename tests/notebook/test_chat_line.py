"""``%chat`` subcommands on a real shell, a real database and a scripted server."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

from nbchat.notebook import extension
from nbchat.notebook.magics import SUBCOMMANDS
from notebook_helpers import last_user_content
from sse_server import ScriptedServer, answer, dead_url


def run(shell, capsys, line):
    """Run ``%chat line`` and return what it printed."""
    capsys.readouterr()
    shell.run_line_magic("chat", line)
    return capsys.readouterr().out


def chat(shell, server, body, line="", reply="ok"):
    server.add(answer(reply))
    shell.run_cell_magic("chat", line, body)


def test_chat_alone_lists_the_subcommands(shell, capsys):
    out = run(shell, capsys, "")
    # Each entry starts a line, indented by two spaces; its description lines by more.
    listed = re.findall(r"^  (\S+)", out, flags=re.MULTILINE)
    assert set(listed) == set(SUBCOMMANDS)


def test_an_unknown_subcommand_is_a_usage_error_listing_them(shell):
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("chat", "sesions")
    assert "sesions" in str(raised.value)
    assert "sessions" in str(raised.value) and "engine" in str(raised.value)


def test_new_sessions_use_and_the_current_mark(shell, server, recorder, capsys):
    out = run(shell, capsys, "new Alpha project")
    assert "Alpha project" in out
    alpha = extension.client_for(shell).current_session()
    chat(shell, server, "hello alpha")
    run(shell, capsys, "new Beta")
    listing = run(shell, capsys, "sessions")
    beta_line = next(line for line in listing.splitlines() if "Beta" in line)
    alpha_line = next(line for line in listing.splitlines() if "Alpha project" in line)
    assert beta_line.startswith("*") and not alpha_line.startswith("*")
    assert "1 turn" in alpha_line
    out = run(shell, capsys, "use Alpha project")
    assert alpha.id in out
    chat(shell, server, "back in alpha")
    assert [m["content"] for m in server.chat_requests[-1].json["messages"][1:]] == [
        "hello alpha", "ok", "back in alpha"
    ]
    with pytest.raises(UsageError, match="No session"):
        shell.run_line_magic("chat", "use no-such-session")


def test_sessions_lists_only_this_notebook_unless_all(shell, server, recorder, capsys):
    shell.user_ns["__session__"] = "/lab/one.ipynb"
    chat(shell, server, "in notebook one")
    shell.user_ns["__session__"] = "/lab/two.ipynb"
    chat(shell, server, "in notebook two")
    mine = run(shell, capsys, "sessions")
    assert "in notebook two" in mine and "in notebook one" not in mine
    everything = run(shell, capsys, "sessions --all")
    assert "in notebook one" in everything and "/lab/one.ipynb" in everything


def test_history_shows_the_last_turns_in_order(shell, server, recorder, capsys):
    for number in range(1, 5):
        chat(shell, server, f"question {number}", reply=f"answer {number}")
    out = run(shell, capsys, "history 2")
    head, body = out.split("\n", 1)
    assert "the last 2 of 4 turns" in head
    assert "question 1" not in body and "question 2" not in body
    assert out.index("question 3") < out.index("answer 3") < out.index("question 4") < out.index("answer 4")
    assert "[turn 4] assistant" in out


def test_files_and_forget(shell, server, recorder, tmp_path, capsys):
    report = tmp_path / "report.txt"
    report.write_text("quarterly numbers")
    chat(shell, server, "read this", line=f"-f {report}")
    out = run(shell, capsys, "files")
    assert "report.txt" in out and "turn" in out
    out = run(shell, capsys, f"forget {report}")
    assert "report.txt" in out
    assert "report.txt" not in run(shell, capsys, "files")
    with pytest.raises(UsageError, match="not among this session's files"):
        shell.run_line_magic("chat", "forget other.txt")


def test_store_stored_attach_by_name_and_unstore(shell, server, recorder, tmp_path, capsys, monkeypatch):
    source = tmp_path / "glossary.md"
    source.write_text("# Glossary\n\nKV cache: the server's memory of a prompt prefix.\n")
    out = run(shell, capsys, f"store {source} --name terms.md")
    assert "terms.md" in out
    assert "terms.md" in run(shell, capsys, "stored")
    monkeypatch.chdir(tmp_path)  # no file named terms.md here: the store answers
    chat(shell, server, "What is a KV cache?", line="-f terms.md")
    assert "KV cache: the server's memory" in last_user_content(server)
    assert "Removed terms.md" in run(shell, capsys, "unstore terms.md")
    assert "empty" in run(shell, capsys, "stored")
    with pytest.raises(UsageError, match="No stored file"):
        shell.run_line_magic("chat", "unstore terms.md")


def test_storing_a_missing_or_unusable_file_is_a_named_error(shell, tmp_path):
    with pytest.raises(UsageError, match="nope.txt"):
        shell.run_line_magic("chat", f"store {tmp_path}/nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="empty.txt"):
        shell.run_line_magic("chat", f"store {empty}")


def test_fork_copies_history_up_to_a_turn_into_a_new_current_session(shell, server, recorder, capsys):
    for number in range(1, 4):
        chat(shell, server, f"q{number}", reply=f"a{number}")
    source = extension.client_for(shell).current_session()
    out = run(shell, capsys, "fork 2")
    forked = extension.client_for(shell).current_session()
    assert forked.id != source.id and forked.id in out and "2 turns" in out
    chat(shell, server, "q-after-fork")
    contents = [m["content"] for m in server.chat_requests[-1].json["messages"][1:]]
    assert contents == ["q1", "a1", "q2", "a2", "q-after-fork"]


def test_config_lists_the_settings_in_effect_and_where_they_come_from(shell, capsys, monkeypatch):
    monkeypatch.setenv("NBCHAT_MODEL", "env-model")
    shell.run_line_magic("config", "NbChat.max_tokens = 321")
    out = run(shell, capsys, "config")
    assert "env-model  [NBCHAT_MODEL]" in out
    assert "321  [NbChat]" in out
    assert "api_key" in out and "openai_api_key" in out and "not set" in out


def test_status_reports_a_healthy_server_its_window_and_the_session(shell, server, recorder, capsys, _private_database):
    chat(shell, server, "hello")
    out = run(shell, capsys, "status")
    assert "server          ok" in out
    assert "8,192 tokens (from the server)" in out
    assert str(_private_database) in out
    assert "scripted-model" in out
    assert "1 turn" in out
    assert "embeddings      off" in out


def test_status_says_when_the_server_is_not_running_and_how_to_start_it(shell, capsys):
    shell.run_line_magic("config", f"NbChat.base_url = {dead_url()!r}")
    out = run(shell, capsys, "status")
    assert "not running" in out and "%chat engine start" in out
    assert "none yet" in out


def test_status_shows_embeddings_on_when_the_embedding_server_answers(shell, capsys):
    shell.run_line_magic("config", f"NbChat.base_url = {dead_url()!r}")
    with ScriptedServer() as embeddings:
        url = embeddings.url
        shell.run_line_magic("config", f"NbChat.embedding_url = {url!r}")
        out = run(shell, capsys, "status")
    assert f"on ({url})" in out
    out = run(shell, capsys, "status")
    assert f"off: {url} not reachable" in out


def test_engine_status_lists_both_kinds(shell, capsys):
    out = run(shell, capsys, "engine status")
    assert out.splitlines()[0].startswith("chat") and out.splitlines()[1].startswith("embeddings")
    with pytest.raises(UsageError, match="engine start"):
        shell.run_line_magic("chat", "engine reboot")


def test_engine_models_lists_the_known_models_and_whether_they_are_cached(
    shell, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("NBCHAT_CACHE_DIR", str(tmp_path / "cache"))
    out = run(shell, capsys, "engine models")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["smollm2-135m-instruct"][1:4] == ["chat", "98", "MB"]
    assert "Apache-2.0" in rows["smollm2-135m-instruct"] and "no" in rows["gemma-3-270m"]
    assert "--model PATH.gguf" in out
    with pytest.raises(UsageError, match="engine models"):
        shell.run_line_magic("chat", "engine models --all")


def test_recall_without_a_query_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="recall"):
        shell.run_line_magic("chat", "recall")


def test_widget_opens_the_chat_panel_on_this_notebooks_client(shell, server):
    widget = shell.run_line_magic("chat", "widget")
    assert type(widget).__name__ == "ChatWidget"
    assert widget.client is extension.client_for(shell)


def test_fork_past_the_last_turn_is_an_error_naming_the_turn_count(shell, server, recorder):
    chat(shell, server, "q1", reply="a1")
    chat(shell, server, "q2", reply="a2")
    client = extension.client_for(shell)
    source = client.current_session()
    sessions = len(client.store.list_sessions(notebook=None))
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("chat", "fork 99")
    message = str(raised.value)
    assert "has 2 turns" in message and "turn 99" in message and "from 1 to 2" in message
    assert len(client.store.list_sessions(notebook=None)) == sessions  # nothing was created
    assert extension.client_for(shell).current_session().id == source.id


def test_forgetting_a_file_still_in_an_earlier_turn_says_it_stays_there(
    shell, server, recorder, tmp_path, capsys
):
    report = tmp_path / "report.txt"
    report.write_text("The quarterly figure is 8812.")
    chat(shell, server, "read this", line=f"-f {report}")
    chat(shell, server, "and then?")
    out = run(shell, capsys, "forget report.txt")
    assert "no longer be re-included" in out
    assert "still in the text of turn 1" in out
    assert "new session" in out or "--no-history" in out
    # Which is true: the next turn still replays turn 1 with the file in it.
    chat(shell, server, "one more")
    history = server.chat_requests[-1].json["messages"]
    assert any("8812" in m["content"] for m in history[:-1])


def test_files_says_how_much_of_a_large_file_the_conversation_has_seen(
    shell, server, recorder, tmp_path, capsys
):
    from needles import needle_document

    document = needle_document()
    report = tmp_path / "report.txt"
    report.write_text(document.text)
    chat(shell, server, document.facts[4].question, line=f"-f {report}")
    out = run(shell, capsys, "files")
    assert "seen by the conversation" in out
    seen = re.search(r"lines 1-[\d,]+(, [\d,]+-[\d,]+)+ of 1,161 seen, ~[\d,]+ of ~[\d,]+ tokens", out)
    assert seen, out
