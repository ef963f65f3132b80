"""The leftover check fails a run that leaves files in the temp folder or the user's cache.

An inner pytest run, in a subprocess with a home of its own (``XDG_CACHE_HOME``,
``XDG_DATA_HOME``), loads the check (``-p leftovers``) and runs one test file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from leftovers import changed_paths

TESTS = Path(__file__).resolve().parent

LEAKY = '''
import os, tempfile
from pathlib import Path

def test_that_leaves_things_behind():
    tempfile.mkdtemp(prefix="nbchat-bench-kv-")
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "nbchat"
    (cache / "engine-chat.log").write_text("a new log")
    with (cache / "engine-embeddings.log").open("a") as log:
        log.write("appended")
    (cache / "models" / "gemma.gguf").write_bytes(b"the model")
    (cache / "models" / "gemma.gguf.sha256").write_text("stamp")
'''

TIDY = '''
import tempfile

def test_that_cleans_up(tmp_path):
    (tmp_path / "notes.txt").write_text("pytest's own folder is fine")
    with tempfile.TemporaryDirectory(prefix="nbchat-") as folder:
        assert folder
'''


def run_inner(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(source)
    cache = tmp_path / "home-cache" / "nbchat"
    (cache / "models").mkdir(parents=True)
    (cache / "engine-embeddings.log").write_text("an old log\n")
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith("NBCHAT_") and name != "PYTEST_ADDOPTS"
    }
    env.update(
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        XDG_CACHE_HOME=str(tmp_path / "home-cache"),
        XDG_DATA_HOME=str(tmp_path / "home-data"),
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "leftovers", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "basetemp"), "-q", str(inner)],
        cwd=inner, env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_run_that_leaves_files_behind_fails_and_lists_them(tmp_path):
    done = run_inner(tmp_path, LEAKY)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 passed" in out
    assert "the test run left files behind" in out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    cache = tmp_path / "home-cache" / "nbchat"
    assert any(line.startswith("temp folder: nbchat-bench-kv-") for line in listed), out
    assert f"{cache}: engine-chat.log" in listed
    assert f"{cache}: engine-embeddings.log" in listed  # appended to, not new
    assert not any("gguf" in line for line in listed)  # the model may appear
    assert len(listed) == 3, out
    # Nothing reached the system temp folder: the leftover is inside pytest's base temp.
    kept = list((tmp_path / "basetemp" / "run-temp").glob("nbchat-bench-kv-*"))
    assert len(kept) == 1


def test_a_tidy_run_passes_without_a_leftover_report(tmp_path):
    done = run_inner(tmp_path, TIDY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left files behind" not in done.stdout


def test_only_new_or_changed_entries_count_and_the_model_is_allowed():
    before = {"models": (0, 0), "engine-chat.log": (10, 1), "notes": (0, 0)}
    after = {
        "models": (0, 0),
        "models/gemma.gguf": (253, 2),
        "models/gemma.gguf.sha256": (95, 2),
        "models/gemma.gguf.123.part": (7, 2),
        "engine-chat.log": (12, 3),
        "notes": (0, 0),
        "engine-chat.json": (40, 3),
    }
    assert changed_paths(before, after) == [
        "engine-chat.json", "engine-chat.log", "models/gemma.gguf.123.part"
    ]
