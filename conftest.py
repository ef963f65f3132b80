"""Set-up of the whole run, and of the example notebooks that nbval runs as tests.

The run fails when it leaves anything behind, in the temp folder or in the user's nbchat
folders (``tests/leftovers.py``).

Each notebook (``notebooks/*.ipynb``) runs in its own kernel, a child of this process
that inherits its environment when it starts. While a kernel starts, the environment
isolates it (``tests/isolation.py``): none of the developer's nbchat settings, a fresh
database and cache folder of its own in pytest's temp folder, so a notebook never writes
to the user's database or cache, nor talks to a server the developer configured. The
model stays the user's: the first run assembles it there and later runs reuse it.

Notebook cells use the real local llama.cpp engine, so they are marked ``server``
(``-m "not server"`` leaves them out).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from isolation import isolated_environment, shared_model_dir

pytest_plugins = ["leftovers"]

_NOTEBOOK_DIR = pytest.StashKey[Path]()
_MODELS = pytest.StashKey[Path]()


def _is_notebook(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_MODELS] = shared_model_dir()  # the developer's, before any test changes it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.server)


@contextmanager
def _kernel_environment(folder: Path, models: Path) -> Iterator[None]:
    """``os.environ`` as a starting kernel should inherit it; restored afterwards."""
    changes = isolated_environment(folder, models)
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            _set(name, value)
        yield
    finally:
        for name, value in saved.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Start a notebook's kernel (nbval does it in the first cell's set-up) privately."""
    if not _is_notebook(item):
        yield
        return
    stash = item.config.stash
    if _NOTEBOOK_DIR not in stash:
        stash[_NOTEBOOK_DIR] = item.config._tmp_path_factory.mktemp("notebooks")  # type: ignore[attr-defined]
    folder = stash[_NOTEBOOK_DIR] / item.path.stem
    with _kernel_environment(folder, stash[_MODELS]):
        yield
