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
def _fresh_model_listings() -> Iterator[None]:
    """A model listing cached by one test is not seen by the next."""
    from nbchat.backends.openrouter import OpenRouterBackend

    OpenRouterBackend.forget_model_listings()
    yield
    OpenRouterBackend.forget_model_listings()
