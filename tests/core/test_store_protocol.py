"""The SQLite store implements the whole Store protocol, with the protocol's signatures.

A second store can run the same check on itself; the turn, the client and the memory
only ever call what the protocol declares.
"""

from __future__ import annotations

import inspect

from nbchat.core.sqlite_store import SqliteStore
from nbchat.core.storage import open_store
from nbchat.core.store import Store


def protocol_members() -> dict[str, object]:
    return {
        name: member
        for name, member in vars(Store).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }


def test_the_sqlite_store_has_every_protocol_member_with_the_same_parameters():
    members = protocol_members()
    assert {"transaction", "search", "add_message", "add_vectors", "set_history"} <= set(members)
    for name, member in members.items():
        mine = getattr(SqliteStore, name, None)
        assert mine is not None, f"SqliteStore lacks {name}"
        if isinstance(member, property):
            assert isinstance(mine, property), name
            continue
        wanted = list(inspect.signature(member).parameters)  # type: ignore[arg-type]
        assert list(inspect.signature(mine).parameters) == wanted, name


def test_the_postgres_store_has_every_protocol_member_with_the_same_parameters():
    from nbchat.core.postgres_store import PostgresStore

    for name, member in protocol_members().items():
        mine = getattr(PostgresStore, name, None)
        assert mine is not None, f"PostgresStore lacks {name}"
        if isinstance(member, property):
            assert isinstance(mine, property), name
            continue
        wanted = list(inspect.signature(member).parameters)  # type: ignore[arg-type]
        assert list(inspect.signature(mine).parameters) == wanted, name


def test_open_store_opens_the_sqlite_store_at_the_path(tmp_path):
    store = open_store(tmp_path / "chat.sqlite")
    try:
        assert isinstance(store, SqliteStore)
        assert store.location == str(tmp_path / "chat.sqlite")
        other = store.reopen()
        other.close()
    finally:
        store.close()
