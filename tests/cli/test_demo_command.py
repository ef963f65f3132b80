"""The README's demo command: `nbchat demo` opens JupyterLab on the quickstart notebook."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nbchat_demo_serves_the_quickstart_notebook_in_jupyterlab(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbchat", "demo", "--no-browser", "--port", str(port),
             "--dir", str(tmp_path / "work")],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        token = None
        deadline = time.monotonic() + 90
        while token is None and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=(\w+)", log.read_text())
            token = found.group(1) if found else None
            time.sleep(0.3)
        assert token, log.read_text()
        url = f"http://127.0.0.1:{port}/api/contents/quickstart.ipynb?token={token}"
        with urllib.request.urlopen(url, timeout=30) as response:
            notebook = json.load(response)["content"]
        sources = ["".join(cell["source"]) for cell in notebook["cells"]]
        assert any("%load_ext nbchat" in s for s in sources)
        assert any(s.startswith("%%chat") for s in sources)
        assert (tmp_path / "work" / "quickstart.ipynb").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
