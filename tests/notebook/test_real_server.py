"""``%%chat`` and ``%chat engine`` against the real llama-server with the default model."""

from __future__ import annotations

import re

import pytest

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


def _engine_pids(kind: str) -> set[int]:
    """Live engine processes of ``kind`` whose parent is this test process."""
    import os
    from pathlib import Path

    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) != os.getpid() or stat[0] == "Z" or b"nbchat.engine" not in argv:
            continue
        if (b"--embeddings" in argv) == (kind == "embeddings"):
            found.add(int(entry.name))
    return found


def _n_ctx(url: str) -> int:
    import httpx

    props = httpx.get(url + "/props", timeout=30).json()
    return int(props["default_generation_settings"]["n_ctx"])


@pytest.mark.server
def test_restarting_the_engine_with_new_options_orphans_the_old_one(shell, capsys, gguf_path, tmp_path, monkeypatch):
    from nbchat.engine import control, engine_status

    monkeypatch.setenv("NBCHAT_CACHE_DIR", str(tmp_path / "cache"))  # the engines' logs
    before = {kind: _engine_pids(kind) for kind in ("chat", "embeddings")}
    try:
        shell.run_line_magic("chat", f"engine start --model {gguf_path} --ctx 512")
        first = engine_status("chat")
        assert _n_ctx(first["url"]) == 512
        shell.run_line_magic("chat", f"engine start --model {gguf_path} --ctx 1024")
        second = engine_status("chat")
        assert second["pid"] != first["pid"] and _n_ctx(second["url"]) == 1024
        assert _engine_pids("chat") - before["chat"] == {second["pid"]}  # the 512 one is gone
        assert "stopping the chat engine" in capsys.readouterr().err
        shell.run_line_magic("chat", "engine stop")
        assert _engine_pids("chat") - before["chat"] == set()

        # --ctx reaches the embeddings engine too.
        shell.run_line_magic("chat", f"engine start --model {gguf_path} --embeddings --ctx 4096")
        chat, embeddings = engine_status("chat"), engine_status("embeddings")
        assert _n_ctx(chat["url"]) == 4096 and _n_ctx(embeddings["url"]) == 4096
        assert _engine_pids("embeddings") - before["embeddings"] == {embeddings["pid"]}
        shell.run_line_magic("chat", "engine stop")
        assert _engine_pids("chat") - before["chat"] == set()
        assert _engine_pids("embeddings") - before["embeddings"] == set()
    finally:  # a failing run leaves no engine behind (and stops none but its own)
        leftover = set().union(*(_engine_pids(kind) - before[kind] for kind in before))
        for handle in [h for h in control._attached if h.pid in leftover]:
            handle.stop()


def test_an_engine_killed_within_the_health_check_cache_reads_as_not_running_and_stores_nothing(
    shell, recorder, own_llama
):
    import os
    import signal

    from IPython.core.error import UsageError

    shell.run_line_magic("config", f"NbChat.base_url = {own_llama.url!r}")
    shell.run_line_magic("config", "NbChat.max_tokens = 8")
    shell.run_cell_magic("chat", "", "Say hi.")
    client = extension.client_for(shell)
    session = client.current_session()
    stored = client.store.messages(session.id)
    assert [m.role for m in stored] == ["user", "assistant"]
    backend = client.backend()
    backend._healthy_until = 0
    backend.check_ready()  # a passing health check, trusted for the next 5 s
    os.kill(own_llama.pid, signal.SIGKILL)
    own_llama._process.wait(timeout=10)
    with pytest.raises(UsageError, match=r"^No llama-server is running at "):
        shell.run_cell_magic("chat", "", "Still there?")
    assert client.store.messages(session.id) == stored
