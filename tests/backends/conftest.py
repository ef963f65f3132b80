"""Fixtures for the backend tests: a scripted server on a real socket and a fake key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sse_server import FAKE_OPENROUTER_KEY, ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def fake_key() -> str:
    return FAKE_OPENROUTER_KEY


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests decide about keys themselves (a developer's real key must not leak in), and
    a model listing cached by one test is not seen by the next."""
    from nbchat.backends.openrouter import OpenRouterBackend

    OpenRouterBackend.forget_model_listings()
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    for name in ("NBCHAT_BACKEND", "NBCHAT_MODEL", "NBCHAT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
    OpenRouterBackend.forget_model_listings()
