"""Raw SQL in tests, on either store: ``?`` placeholders, run on SQLite or PostgreSQL.

Some tests reach under the store (to age a session, say). They write SQLite's ``?``
placeholders; on PostgreSQL they become ``%s`` and run in the ``nbchat`` schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def execute(db: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run ``sql`` on a transaction handle or connection of either store."""
    import sqlite3

    if isinstance(db, sqlite3.Connection):
        return db.execute(sql, params)
    return db.execute(sql.replace("?", "%s"), params)


def query(store: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read on ``store``'s data (a connection of its own for PostgreSQL)."""
    if hasattr(store, "connection"):
        return [tuple(r) for r in store.connection.execute(sql, params).fetchall()]
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as db:
        db.execute("SET search_path TO nbchat, public")
        return [tuple(r) for r in db.execute(sql.replace("?", "%s"), params).fetchall()]
