"""``%%chat`` and ``%chat engine`` against the real llama-server with the default model."""

from __future__ import annotations

import re

from nbchat.notebook import extension

FOOTER = re.compile(r"prompt ([\d,]+) tok \(([\d,]+) cached, ([\d,]+) new\) · ([\d,]+) new tok")


def footer_numbers(text: str) -> tuple[int, int, int, int]:
    found = FOOTER.search(text)
    assert found, text
    return tuple(int(group.replace(",", "")) for group in found.groups())  # type: ignore[return-value]


def test_chat_streams_from_llama_server_and_the_footer_shows_cached_tokens(shell, recorder, llama_url):
    shell.run_line_magic("config", f"NbChat.base_url = {llama_url!r}")
    shell.run_line_magic("config", "NbChat.max_tokens = 24")
    shell.run_line_magic("config", "NbChat.temperature = 0.0")
    shell.run_cell_magic("chat", "", "Name three colours of the rainbow.")
    first_answer = recorder.answer_text()
    assert first_answer.strip()
    prompt_total, cached, new, generated = footer_numbers(recorder.footer_text())
    assert prompt_total == cached + new and generated > 0
    answer_displays = [r for r in recorder.displays() if "text/markdown" in r.data]
    assert len(answer_displays) == 1
    assert recorder.updates()[-1].data["text/plain"] == first_answer

    shell.run_cell_magic("chat", "", "And one more?")
    total_2, cached_2, new_2, _ = footer_numbers(recorder.footer_text())
    # The second prompt starts with the first turn: the server reuses most of it (it
    # re-evaluates a few tokens at the end of the cached part).
    assert total_2 > prompt_total
    assert cached_2 >= prompt_total - 8 and cached_2 > 0
    assert new_2 == total_2 - cached_2
    session = extension.client_for(shell).current_session()
    assert session is not None
    statuses = [m.status for m in extension.client_for(shell).store.messages(session.id)]
    assert statuses == ["complete"] * 4


def test_engine_start_points_chat_at_a_local_server_and_stop_stops_it(shell, recorder, capsys, llama_url):
    shell.run_line_magic("chat", "engine start --ctx 2048")
    out = capsys.readouterr().out
    config = extension.config_for(shell)
    assert config.backend == "llama" and config.base_url and config.base_url != llama_url
    assert f"Chat engine ready at {config.base_url}" in out
    shell.run_line_magic("config", "NbChat.max_tokens = 8")
    shell.run_cell_magic("chat", "", "Say hi.")
    assert recorder.answer_text().strip()
    shell.run_line_magic("chat", "status")
    status = capsys.readouterr().out
    assert "server          ok" in status and "2,048 tokens (from the server)" in status
    url = config.base_url
    shell.run_line_magic("chat", "engine stop")
    assert f"Stopped the chat engine at {url}" in capsys.readouterr().out
    assert config.base_url is None
