"""Fixtures of the reliability tier: a fast scripted server and a fresh API client per test."""

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
def db_path(_private_database: Path) -> Path:
    """This test's database file (``NBCHAT_DB``)."""
    return _private_database
