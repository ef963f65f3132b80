"""Set-up of the example notebooks, which nbval runs as tests (``notebooks/*.ipynb``).

Each notebook runs in its own kernel, a child of this process that inherits its
environment when it starts. While a kernel starts, the environment gives it a fresh
database of its own (``NBCHAT_DB`` in a temporary folder removed at the end of the run)
and none of the developer's nbchat settings, so a notebook never writes to the user's
database nor talks to a server the developer configured. The model cache stays the
user's: the first run assembles the model there and later runs reuse it.

Notebook cells use the real local llama.cpp engine, so they are marked ``server``
(``-m "not server"`` leaves them out).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The settings a developer may have exported; a notebook must not see them.
DEVELOPER_SETTINGS = (
    "NBCHAT_BACKEND",
    "NBCHAT_MODEL",
    "NBCHAT_BASE_URL",
    "NBCHAT_OPENROUTER_URL",
    "NBCHAT_OPENAI_API_KEY",
    "NBCHAT_EMBEDDING_URL",
    "NBCHAT_DB",
)
_DATABASE_DIR = pytest.StashKey[Path]()


def _is_notebook(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.server)


@contextmanager
def _kernel_environment(database: Path) -> Iterator[None]:
    """``os.environ`` as a starting kernel should inherit it; restored afterwards."""
    saved = {name: os.environ.get(name) for name in DEVELOPER_SETTINGS}
    for name in DEVELOPER_SETTINGS:
        os.environ.pop(name, None)
    os.environ["NBCHAT_DB"] = str(database)
    try:
        yield
    finally:
        for name, value in saved.items():
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
    if _DATABASE_DIR not in stash:
        stash[_DATABASE_DIR] = Path(tempfile.mkdtemp(prefix="nbchat-notebooks-"))
    database = stash[_DATABASE_DIR] / f"{item.path.stem}.sqlite"
    with _kernel_environment(database):
        yield


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_DATABASE_DIR, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
