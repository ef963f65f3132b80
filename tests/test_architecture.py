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


def test_imports_follow_the_layers_of_pyproject_toml(tmp_path):
    package_parent = str(Path(nbchat.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [package_parent, *filter(None, [os.environ.get("PYTHONPATH")])]
    )}
    # import-linter puts its working folder on the path: run it in an empty one, so the
    # package it checks is the one this test imports.
    run = subprocess.run(
        [sys.executable, "-P", "-c",
         "import sys; from importlinter.cli import lint_imports; "
         f"sys.exit(lint_imports({str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout, run.stdout


def _cycles(packages: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Import cycles through modules of ``packages`` (each once, by its first module)."""
    import grimp

    graph = grimp.build_graph("nbchat", cache_dir=None)
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for module in sorted(graph.modules):
        if not module.startswith(packages):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycle = (module, *back)
                found.setdefault(frozenset(cycle), cycle)
    return list(found.values())


def test_no_module_of_nbchat_is_in_an_import_cycle():
    assert _cycles(("nbchat",)) == []
