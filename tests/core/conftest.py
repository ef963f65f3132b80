"""Fixtures for core tests: a real store (SQLite, then PostgreSQL) and settings naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbchat.core.settings import Settings
from nbchat.core.storage import open_store
from nbchat.core.store import Store


@pytest.fixture
def store(database: Path | str) -> Iterator[Store]:
    opened = open_store(database)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def settings(database: Path | str) -> Settings:
    return Settings(db_path=database, context_window=8192, max_tokens=256)
