"""An API key set with ``%config`` never shows up in any output of any magic."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from notebook_helpers import last_user_content
from sse_server import answer, json_reply

FAKE_KEY = "sk-or-v1-FAKEfeedfacefeedfacefeedfacefeedface99"


def test_a_configured_key_appears_in_no_output(shell, server, recorder, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("nothing secret here")
    shell.run_line_magic("config", "NbChat.backend = 'openrouter'")
    shell.run_line_magic("config", f"NbChat.openrouter_url = {server.url!r}")
    shell.run_cell(f'%config NbChat.api_key = "{FAKE_KEY}"', store_history=True)
    server.add(answer("First answer."), answer("Second answer."))
    cells = [
        "%config NbChat",
        "%config NbChat.api_key",
        "%chat config",
        "%chat status",
        f"%%chat -f {notes}\nHello",
        "%%chat --nb --dry-run\nWhat happened so far?",
        "%%chat --nb\nAnd now?",
        "%chat history",
        "%chat files",
        "%chat sessions",
        "%%chat -f /no/such/file.txt\nbad",
    ]
    capsys.readouterr()
    for cell in cells:
        shell.run_cell(cell, store_history=True)
    out = capsys.readouterr()
    shown = out.out + out.err + repr([r.data for r in recorder.records])
    assert FAKE_KEY not in shown
    assert "FAKEfeedface" not in shown
    assert "Second answer." in shown and "Current: <hidden>" in shown
    # What was sent as the notebook's cells had it masked too.
    assert FAKE_KEY not in last_user_content(server)
    assert "[redacted]" in last_user_content(server)
    # The key was used where it belongs: the Authorization header of OpenRouter.
    assert server.chat_requests[-1].headers.get("authorization") == f"Bearer {FAKE_KEY}"


def _use_backend(shell, server, backend):
    """``backend`` served by the scripted server."""
    shell.run_line_magic("config", f"NbChat.backend = {backend!r}")
    shell.run_line_magic("config", f"NbChat.openrouter_url = '{server.url}/api/v1'")
    shell.run_line_magic("config", f"NbChat.base_url = '{server.url}/v1'")


@pytest.mark.parametrize(
    ("backend", "key_setting", "key_variable"),
    [("openrouter", "api_key", "OPENROUTER_API_KEY"),
     ("openai", "openai_api_key", "NBCHAT_OPENAI_API_KEY")],
)
def test_a_keys_environment_variable_wins_over_its_configuration(
    shell, server, recorder, capsys, monkeypatch, backend, key_setting, key_variable
):
    _use_backend(shell, server, backend)
    env_key, config_key = FAKE_KEY.replace("FAKE", "ENVK"), FAKE_KEY.replace("FAKE", "CONF")
    for variable in ("OPENROUTER_API_KEY", "NBCHAT_OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    shell.run_cell(f'%config NbChat.{key_setting} = "{config_key}"')
    monkeypatch.setenv(key_variable, env_key)
    server.add(answer("one"), answer("two"))
    capsys.readouterr()
    shell.run_cell_magic("chat", "", "first")
    shell.run_line_magic("chat", "config")
    monkeypatch.delenv(key_variable)
    shell.run_cell_magic("chat", "", "second")
    sent = [r.headers.get("authorization") for r in server.chat_requests]
    assert sent == [f"Bearer {env_key}", f"Bearer {config_key}"]
    out = capsys.readouterr()
    assert f"set (hidden)  [{key_variable}]" in out.out  # %chat config names the source
    shown = out.out + out.err + repr([r.data for r in recorder.records])
    assert env_key not in shown and config_key not in shown


def test_a_401_on_the_openai_backend_names_its_own_key_setting(shell, server, recorder, monkeypatch):
    _use_backend(shell, server, "openai")
    monkeypatch.setenv("NBCHAT_OPENAI_API_KEY", FAKE_KEY)
    server.add(json_reply(401, {"error": {"message": f"Incorrect API key {FAKE_KEY}"}}))
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("chat", "", "hello")
    message = str(raised.value)
    assert "rejected the API key (HTTP 401)" in message
    assert "NBCHAT_OPENAI_API_KEY or c.NbChat.openai_api_key" in message
    assert "c.NbChat.api_key" not in message
    assert FAKE_KEY not in message
