"""A pytest plugin that fails the run when it leaves anything behind.

- The temp folder: for the whole run, ``TMPDIR`` (inherited by kernels and
  subprocesses) and :mod:`tempfile` point at an empty folder inside pytest's own base
  temp folder. Whatever the run's code leaves in "the temp folder" is found there at the
  end, and nothing reaches the system temp folder (pytest's own folders aside).
- The user's nbchat folders (cache and data): listed at the start, with sizes and times,
  and again at the end. The model in ``<cache>/models`` is the one thing allowed to
  appear (the first run assembles it); any other new or changed file is a leftover.

Leftovers are listed at the end of the run, whose exit code becomes 1. The root
``conftest.py`` loads this plugin; ``-p leftovers`` loads it for any run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

__all__ = ["snapshot", "changed_paths", "user_folders", "MODEL_SUFFIXES"]

# What the model's assembly writes in <cache>/models: the GGUF and its checksum stamp.
MODEL_SUFFIXES = (".gguf", ".gguf.sha256")

_TEMP = pytest.StashKey[Path]()
_BEFORE = pytest.StashKey["dict[Path, dict[str, tuple[int, int]]]"]()
_SAVED_TEMP = pytest.StashKey["tuple[str | None, str | None]"]()


def user_folders() -> list[Path]:
    """nbchat's folders in the user's home: the cache (model, engine logs) and the data
    (the default database), as the environment at the start of the run says."""
    import platformdirs

    configured = os.environ.get("NBCHAT_CACHE_DIR")
    cache = Path(configured).expanduser() if configured else Path(
        platformdirs.user_cache_dir("nbchat")
    )
    return [cache, Path(platformdirs.user_data_dir("nbchat"))]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder``: relative path -> (size, mtime in ns); folders (0, 0).

    Symbolic links are listed, not followed. A missing folder has no entries.
    """
    found: dict[str, tuple[int, int]] = {}
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), folder)] = (0, 0)
        for name in files:
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except FileNotFoundError:
                continue  # removed while we looked
            found[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


def changed_paths(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[str]:
    """Entries that are new or changed, except the model and its folder."""
    return sorted(
        path
        for path, state in after.items()
        if before.get(path) != state and not _is_model(path)
    )


def _is_model(relative: str) -> bool:
    parts = Path(relative).parts
    if parts == ("models",):
        return True
    return len(parts) == 2 and parts[0] == "models" and parts[1].endswith(MODEL_SUFFIXES)


def _entries(folder: Path) -> Iterable[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else ()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: its controller checks
        return
    config.stash[_BEFORE] = {folder: snapshot(folder) for folder in user_folders()}
    temp = config._tmp_path_factory.mktemp("run-temp", numbered=False)  # type: ignore[attr-defined]
    config.stash[_TEMP] = temp
    config.stash[_SAVED_TEMP] = (os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"] = str(temp)
    tempfile.tempdir = str(temp)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _TEMP not in config.stash:
        return
    temp = config.stash[_TEMP]
    problems = [f"temp folder: {name}" for name in _entries(temp)]
    for folder, before in config.stash[_BEFORE].items():
        problems += [f"{folder}: {path}" for path in changed_paths(before, snapshot(folder))]
    if not problems:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        "the test run left files behind (tests must write only under tmp_path; the "
        f"temp folder's leftovers are kept in {temp}):",
        *(f"  {problem}" for problem in problems),
    ]
    if reporter is not None:
        reporter.write_sep("=", "leftovers", red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SAVED_TEMP not in config.stash:
        return
    saved_env, saved_tempdir = config.stash[_SAVED_TEMP]
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
    tempfile.tempdir = saved_tempdir
