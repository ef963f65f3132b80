"""The layering contract of pyproject.toml, checked by import-linter on every test run.

Imports point one way (``docs/architecture.md``): notebook > client > backends | memory |
engine > core, imports inside functions and under ``TYPE_CHECKING`` included. The
contract is checked on the code this test imports (a worktree on ``PYTHONPATH`` too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbchat

ROOT = Path(__file__).resolve().parent.parent


def test_imports_follow_the_layers_of_pyproject_toml():
    package_parent = str(Path(nbchat.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [package_parent, *filter(None, [os.environ.get("PYTHONPATH")])]
    )}
    run = subprocess.run(
        [sys.executable, "-c",
         "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout, run.stdout
