"""An API key set with ``%config`` never shows up in any output of any magic."""

from __future__ import annotations

from notebook_helpers import last_user_content
from sse_server import answer

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
