"""Fixtures of the reliability tier: a fast scripted server, a fresh API client per test,
and the test's database on each store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sse_server import ScriptedServer, echo_answer


@pytest.fixture(scope="module")
def fast_server() -> Iterator[ScriptedServer]:
    """An OpenAI-compatible server that answers every chat at once with ``Echo: <prompt>``."""
    with ScriptedServer(default=echo_answer) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``nbchat.chat`` gets a new default client (and so this test's database), closed after."""
    import nbchat.api

    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)
    yield
    client = nbchat.api._DEFAULT
    if client is not None:
        client.close()


@pytest.fixture
def db_path(database: Path | str) -> Path | str:
    """This test's database (``NBCHAT_DB``), once per store: a SQLite file, then a
    PostgreSQL database reached as the user ``alice`` (see ``database``)."""
    return database


@pytest.fixture
def sqlite_path(_private_database: Path) -> Path:
    """This test's SQLite file (``NBCHAT_DB``), for what only a SQLite file has."""
    return _private_database
