"""Loading, configuring and keying the extension on a real IPython shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from traitlets import TraitError

from nbchat.notebook import extension
from nbchat.notebook.config import NbChat
from sse_server import answer

FAKE_KEY = "sk-or-v1-FAKE0123456789abcdefFAKE0123456789abcdef"


def test_loading_registers_both_magics_and_the_configurable(shell):
    assert shell.find_cell_magic("chat") is not None
    assert shell.find_line_magic("chat") is not None
    assert sum(type(c).__name__ == "NbChat" for c in shell.configurables) == 1


def test_unloading_removes_every_magic_and_the_configurable(shell):
    shell.run_line_magic("unload_ext", "nbchat")
    assert shell.find_cell_magic("chat") is None
    assert shell.find_line_magic("chat") is None
    assert "ChatMagics" not in shell.magics_manager.registry
    assert not any(type(c).__name__ == "NbChat" for c in shell.configurables)
    with pytest.raises(UsageError):
        shell.run_cell_magic("chat", "", "hello")


def test_loading_twice_is_harmless(shell):
    extension.load(shell)
    shell.run_line_magic("reload_ext", "nbchat")
    assert sum(type(c).__name__ == "NbChat" for c in shell.configurables) == 1
    assert shell.find_cell_magic("chat") is not None
    shell.run_line_magic("unload_ext", "nbchat")
    assert shell.find_line_magic("chat") is None


def test_config_magic_changes_the_next_turns_settings(shell):
    shell.run_line_magic("config", "NbChat.model = 'tiny-model'")
    shell.run_line_magic("config", "NbChat.max_tokens = 77")
    shell.run_line_magic("config", "NbChat.attachment_budget = 5000")
    settings = extension.client_for(shell).settings
    assert (settings.model, settings.max_tokens, settings.attachment_budget) == ("tiny-model", 77, 5000)
    shell.run_line_magic("config", "NbChat.model = None")
    assert extension.client_for(shell).settings.model is None


def test_environment_variables_are_the_defaults_and_config_wins(shell, monkeypatch):
    monkeypatch.setenv("NBCHAT_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("NBCHAT_MODEL", "env-model")
    monkeypatch.setenv("NBCHAT_BACKEND", "openai")
    settings = extension.client_for(shell).settings
    assert (settings.base_url, settings.model, settings.backend) == (
        "http://127.0.0.1:9999", "env-model", "openai"
    )
    shell.run_line_magic("config", "NbChat.model = 'configured'")
    assert extension.client_for(shell).settings.model == "configured"
    assert extension.config_for(shell).source_of("base_url") == "NBCHAT_BASE_URL"
    assert extension.config_for(shell).source_of("model") == "NbChat"


def test_ipython_config_values_reach_nbchat(shell):
    shell.run_line_magic("unload_ext", "nbchat")
    shell.config.NbChat.model = "from-ipython-config"
    try:
        shell.run_line_magic("load_ext", "nbchat")
        assert extension.client_for(shell).settings.model == "from-ipython-config"
    finally:
        del shell.config.NbChat["model"]


def test_a_bad_config_value_is_refused(shell):
    with pytest.raises(TraitError, match="backend"):
        extension.config_for(shell).backend = "gpt-cloud"


def test_the_api_key_is_never_shown_by_config_or_chat_config(shell, capsys):
    shell.run_cell(f'%config NbChat.api_key = "{FAKE_KEY}"')
    capsys.readouterr()
    shell.run_cell("%config NbChat")
    shell.run_cell("%config NbChat.api_key")
    shell.run_cell("%chat config")
    shell.run_cell("print(repr(get_ipython().configurables[-1]))")
    out = capsys.readouterr()
    text = out.out + out.err
    assert FAKE_KEY not in text and "FAKE0123" not in text
    assert "Current: <hidden>" in text
    assert "set (hidden)" in text
    # The key itself still reaches the settings the backend is built from.
    assert extension.client_for(shell).settings.api_key == FAKE_KEY
    assert type(extension.client_for(shell).settings.api_key) is str


def test_the_secret_trait_masks_its_repr_but_keeps_its_value():
    config = NbChat()
    config.api_key = FAKE_KEY
    assert repr(config.api_key) == "<hidden>"
    assert f"Bearer {config.api_key}" == f"Bearer {FAKE_KEY}"
    assert FAKE_KEY not in NbChat.class_get_help(config)


def test_the_session_key_is_the_notebook_path_when_the_kernel_knows_it(shell, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    fallback = extension.client_for(shell).notebook
    assert fallback and not fallback.endswith(".ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/analysis.ipynb")
    assert extension.client_for(shell).notebook == "/work/analysis.ipynb"
    shell.user_ns["__vsc_ipynb_file__"] = "/vsc/nb.ipynb"
    assert extension.client_for(shell).notebook == "/vsc/nb.ipynb"
    shell.user_ns["__session__"] = "/lab/notes.ipynb"
    assert extension.client_for(shell).notebook == "/lab/notes.ipynb"


def test_changing_notebook_key_forgets_the_current_session(shell):
    client = extension.client_for(shell)
    client.session_id = "abc"
    shell.user_ns["__session__"] = "/lab/other.ipynb"
    assert extension.client_for(shell).session_id is None


def test_loading_the_extension_imports_nothing_heavy():
    heavy = ["pypdf", "pypdfium2", "openpyxl", "docx", "pptx", "numpy", "pandas", "httpx", "anywidget", "markdown_it"]
    code = f"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
started = time.perf_counter()
shell.run_line_magic("load_ext", "nbchat")
elapsed = time.perf_counter() - started
added = set(sys.modules) - before
heavy = {heavy!r}
print(json.dumps({{
    "added_heavy": sorted(m for m in added if m.split(".")[0] in heavy),
    "already": sorted(h for h in heavy if h in before),
    "seconds": elapsed,
    "magic": shell.find_cell_magic("chat") is not None,
}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["magic"] is True
    assert report["added_heavy"] == []
    assert report["seconds"] < 2.0


def test_every_setting_an_error_message_names_is_a_configurable_trait():
    # Messages tell users to raise c.NbChat.<name>: each such name must exist.
    import pathlib
    import re

    from nbchat.notebook.config import NbChat

    package = pathlib.Path(__file__).resolve().parents[2] / "nbchat"
    named = {
        match
        for path in package.rglob("*.py")
        for match in re.findall(r"c\.NbChat\.(\w+)", path.read_text(encoding="utf-8"))
    }
    assert named, "no message names a setting"
    configurable = set(NbChat.class_trait_names(config=True))
    assert named <= configurable, named - configurable


def test_a_rejected_config_value_does_not_break_reloading_the_extension(
    shell, server, recorder, capsys
):
    shell.run_cell("%config NbChat.max_tokens = 0")  # the trait refuses it
    capsys.readouterr()
    shell.run_line_magic("reload_ext", "nbchat")  # must not raise
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if "NbChat.max_tokens" in line]
    assert len(lines) == 1 and "ignored" in lines[0] and "1024" in lines[0]
    assert "Traceback" not in out.err + out.out
    assert shell.find_cell_magic("chat") is not None
    assert "max_tokens" not in shell.config.NbChat  # the rejected value does not stick
    server.add(answer("Still here."), answer("And again."))
    shell.run_cell_magic("chat", "", "Are you there?")
    assert recorder.answer_text() == "Still here."
    assert server.chat_requests[0].json["max_tokens"] == 1024
    shell.run_line_magic("reload_ext", "nbchat")  # a second reload is quiet
    assert "NbChat.max_tokens" not in capsys.readouterr().err
    shell.run_cell_magic("chat", "", "Still?")
    assert recorder.answer_text() == "And again."
