"""Which store to open: the one place that names an implementation of the Store protocol."""

from __future__ import annotations

from pathlib import Path

from nbchat.core.sqlite_store import SqliteStore
from nbchat.core.store import Store

__all__ = ["open_store"]


def open_store(path: str | Path) -> Store:
    """The store at ``path``: a ``postgresql://`` URL opens the team store (its tables
    made beforehand by ``nbchat db init``; psycopg imported only then), anything else a
    SQLite file (created and migrated on open)."""
    if isinstance(path, str) and path.strip().lower().startswith(("postgresql://", "postgres://")):
        from nbchat.core.postgres_store import PostgresStore

        return PostgresStore(path.strip())
    return SqliteStore(path)
