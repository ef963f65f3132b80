"""Fixtures for core tests: a real store in tmp_path and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbchat.core.settings import Settings
from nbchat.core.sqlite_store import SqliteStore as Store


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    with Store(tmp_path / "nbchat.sqlite") as opened:
        yield opened


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(db_path=tmp_path / "nbchat.sqlite", context_window=8192, max_tokens=256)
