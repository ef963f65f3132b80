"""A real IPython shell with nbchat loaded, a recording display publisher, a scripted server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.testing import globalipapp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notebook_helpers import RecordingPublisher  # noqa: E402
from sse_server import ScriptedServer  # noqa: E402


@pytest.fixture(scope="session")
def _test_shell() -> Iterator[Any]:
    """IPython's test shell, one per run. Its history file is a temp file that IPython
    never removes: at the end of the run the shell closes its history (what it would do at
    exit, once) and the file goes."""
    ip = globalipapp.get_ipython()
    history = Path(ip.history_manager.hist_file)
    yield ip
    ip._atexit_once()
    history.unlink(missing_ok=True)


@pytest.fixture
def shell(_test_shell: Any) -> Iterator[Any]:
    """The test IPython shell with ``%load_ext nbchat`` done, unloaded afterwards."""
    ip = _test_shell
    ip.config.pop("NbChat", None)  # %config also records values in the shell's config
    ip.run_line_magic("load_ext", "nbchat")
    saved_publisher = ip.display_pub
    try:
        yield ip
    finally:
        ip.display_pub = saved_publisher
        ip.run_line_magic("unload_ext", "nbchat")
        ip.config.pop("NbChat", None)
        for name in ("__session__", "__vsc_ipynb_file__"):
            ip.user_ns.pop(name, None)


@pytest.fixture
def recorder(shell: Any) -> RecordingPublisher:
    """Every display the shell publishes during the test."""
    publisher = RecordingPublisher()
    shell.display_pub = publisher
    return publisher


@pytest.fixture
def server(shell: Any) -> Iterator[ScriptedServer]:
    """A scripted llama-style server that the shell's NbChat points at."""
    with ScriptedServer() as scripted:
        shell.run_line_magic("config", f"NbChat.base_url = {scripted.url!r}")
        shell.run_line_magic("config", "NbChat.backend = 'llama'")
        yield scripted
