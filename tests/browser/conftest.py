"""The browser tier: Debian's chromium driven by Playwright, and Jupyter on a temp dir.

Playwright's own browser download is not used: the set-up installs Debian's
``chromium`` package with apt-get when it is missing (as root) and launches it by
path. ``jupyter_lab`` and ``jupyter_notebook`` start a real JupyterLab 4 or Notebook 7
server whose kernels talk to the session's real llama-server (``llama_url``) and keep
their conversations in a database of their own.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from isolation import isolated_environment, shared_model_dir

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The front ends: the ``jupyter`` subcommand, and where each opens a notebook.
NOTEBOOK_PATHS = {"lab": "lab/tree", "notebook": "notebooks"}


@dataclass(frozen=True)
class JupyterServer:
    """A running JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``).

    ``url`` has no trailing slash; ``root`` holds the notebooks.
    """

    app: str
    url: str
    token: str
    root: Path
    db_path: Path
    log_path: Path

    def notebook_url(self, name: str) -> str:
        """The notebook alone: JupyterLab's ``reset`` drops the workspace an earlier test
        left (its notebooks reopened beside this one, their panels included)."""
        reset = "&reset" if self.app == "lab" else ""
        return f"{self.url}/{NOTEBOOK_PATHS[self.app]}/{name}?token={self.token}{reset}"

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """A notebook of code cells, as Jupyter would save it."""
        notebook = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {},
                 "outputs": [], "source": source}
                for i, source in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        path = self.root / name
        path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        return path


# No news prompt, and no kernel chooser: the notebook's own kernel starts by itself.
# Notebook 7 is built from the same extensions and reads the same settings.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}


def _write_lab_settings(settings_dir: Path) -> None:
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _wait_for_server(
    url: str, token: str, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Poll the REST API until the server answers; fail with its log if it does not."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Jupyter exited early:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"Jupyter did not start within 60 s:\n{_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:]


@contextmanager
def _running_jupyter(app: str, llama_url: str, base: Path) -> Iterator[JupyterServer]:
    """Start ``jupyter <app>`` on a free port under ``base``; stop its process group after."""
    root = base / "notebooks"
    root.mkdir()
    port = _free_port()
    token = secrets.token_hex(16)
    log_path = base / f"jupyter-{app}.log"
    db_path = base / "nbchat.sqlite"
    env = dict(os.environ)
    # Isolated like every test: no developer setting, a database and cache of its own.
    for name, value in isolated_environment(base, shared_model_dir()).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.update({
        "NBCHAT_DB": str(db_path),
        "NBCHAT_BASE_URL": llama_url,
        "NBCHAT_BACKEND": "llama",
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "PYTHONUNBUFFERED": "1",
    })
    _write_lab_settings(base / "settings")
    command = [
        sys.executable, "-m", "jupyter", app, "--no-browser", f"--port={port}",
        "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if app == "lab":
        command += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI often run as root
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, token, process, log_path)
        yield JupyterServer(app, url, token, root, db_path, log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture(scope="session")
def jupyter_lab(
    llama_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    with _running_jupyter("lab", llama_url, tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture
def own_jupyter_lab(llama_url: str, tmp_path: Path) -> Iterator[JupyterServer]:
    """A JupyterLab of one test's own, for a test whose kernels and notebooks must not
    share a server with the panel's main test (their kernels stay alive until the end)."""
    base = tmp_path / "jupyterlab"
    base.mkdir()
    with _running_jupyter("lab", llama_url, base) as server:
        yield server


@pytest.fixture(scope="session")
def jupyter_notebook(
    llama_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    with _running_jupyter("notebook", llama_url, tmp_path_factory.mktemp("notebook7")) as server:
        yield server
