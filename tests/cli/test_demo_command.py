"""The README's demo command: `nbchat demo` opens JupyterLab on a copy of the notebooks.

The copy lives in a folder of the user's (the user data dir by default), so running the
cells never edits the repository's tracked notebooks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nbchat.__main__ import copy_example_notebooks
from nbchat.core.errors import NbChatError

REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """Start `nbchat demo`; the JupyterLab port, token and process once it serves."""
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbchat", "demo", "--no-browser", "--port", str(port), *args],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    token = None
    deadline = time.monotonic() + 90
    while token is None and time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=(\w+)", log.read_text())
        token = found.group(1) if found else None
        time.sleep(0.3)
    if token is None:
        stop(process)
        raise AssertionError(log.read_text())
    return port, token, process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def contents(port: int, token: str, path: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/contents/{path}?token={token}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_nbchat_demo_serves_the_quickstart_notebook_in_jupyterlab(tmp_path):
    port, token, process = serve_demo(tmp_path, "--dir", str(tmp_path / "work"))
    try:
        notebook = contents(port, token, "quickstart.ipynb")["content"]
        sources = ["".join(cell["source"]) for cell in notebook["cells"]]
        assert any("%load_ext nbchat" in s for s in sources)
        assert any(s.startswith("%%chat") for s in sources)
        assert (tmp_path / "work" / "quickstart.ipynb").exists()
    finally:
        stop(process)


def test_nbchat_demo_serves_a_copy_in_the_user_data_dir_not_the_tracked_notebooks(tmp_path):
    data_home = tmp_path / "data"
    copy = data_home / "nbchat" / "notebooks"
    copy.mkdir(parents=True)
    (copy / "mine.txt").write_text("the user's own file")
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    port, token, process = serve_demo(tmp_path, env=env)
    try:
        # JupyterLab's root is the copy: the user's file is served, and every notebook.
        assert contents(port, token, "mine.txt")["content"] == "the user's own file"
        served = {entry["name"] for entry in contents(port, token, "")["content"]}
        tracked = {path.name for path in REPO_NOTEBOOKS.glob("*.ipynb")}
        assert tracked and tracked <= served
    finally:
        stop(process)
    for name in tracked:
        assert (copy / name).read_bytes() == (REPO_NOTEBOOKS / name).read_bytes()


def test_the_notebook_copy_keeps_the_users_edits_and_adds_missing_notebooks(tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "quickstart.ipynb").write_text('{"edited": true}')
    assert copy_example_notebooks(folder) == folder
    assert (folder / "quickstart.ipynb").read_text() == '{"edited": true}'
    assert (folder / "sessions.ipynb").read_bytes() == (
        REPO_NOTEBOOKS / "sessions.ipynb"
    ).read_bytes()


def test_the_demo_refuses_to_work_in_the_repositorys_own_notebooks():
    with pytest.raises(NbChatError, match="repository's own example notebooks"):
        copy_example_notebooks(REPO_NOTEBOOKS)
