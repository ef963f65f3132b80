"""Who sees what on the team store, checked with raw SQL on each user's own connection.

Row-level security is what protects a user's history, not the nbchat code: so these
tests bypass nbchat and speak SQL directly as ``alice`` and ``bob``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pg_cluster import ADMIN, GROUP

# Every table holding user content, with a row to insert (owner left to its default).
ALICE_ROWS = {
    "sessions": (
        "INSERT INTO sessions (id, title, created, updated) VALUES ('s-alice', 'plans', 1, 1)"
    ),
    "messages": (
        "INSERT INTO messages (session_id, seq, role, content, rendered, created) "
        "VALUES ('s-alice', 0, 'user', 'the merger is secret', 'the merger is secret', 1)"
    ),
    "files": (
        "INSERT INTO files (name, data, sha256, size_bytes, created) "
        "VALUES ('memo.txt', 'memo bytes', 'sha-memo', 10, 1)"
    ),
    "attachments": (
        "INSERT INTO attachments (session_id, kind, name, sha256, created) "
        "VALUES ('s-alice', 'stored', 'memo.txt', 'sha-memo', 1)"
    ),
    "extracts": (
        "INSERT INTO extracts (sha256, extractor_version, kind, text) "
        "VALUES ('sha-memo', 'v1', 'text', 'memo text')"
    ),
    "path_hashes": (
        "INSERT INTO path_hashes (path, size_bytes, mtime_ns, sha256) "
        "VALUES ('/home/alice/memo.txt', 10, 5, 'sha-memo')"
    ),
    "token_counts": (
        "INSERT INTO token_counts (sha256, tokenizer, tokens) VALUES ('sha-memo', 'tk', 3)"
    ),
    "embeddings": (
        "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
        "SELECT id, 'm', 0, 3, '[1,0,0]', 1 FROM messages WHERE session_id = 's-alice'"
    ),
    "file_chunks": (
        "INSERT INTO file_chunks (sha256, extractor_version, idx, start, stop, label, words) "
        "VALUES ('sha-memo', 'v1', 0, 0, 9, 'line 1', to_tsvector('english', 'memo text'))"
    ),
    "chunk_vectors": (
        "INSERT INTO chunk_vectors (chunk_id, model, dim, vector) "
        "SELECT id, 'm', 3, '[1,0,0]' FROM file_chunks WHERE sha256 = 'sha-memo'"
    ),
    "sent_chunks": (
        "INSERT INTO sent_chunks (session_id, message_id, sha256, idx) "
        "SELECT 's-alice', id, 'sha-memo', 0 FROM messages WHERE session_id = 's-alice'"
    ),
}
SHARED_TABLES = ("sessions", "messages", "attachments", "files")


def connect_as(cluster: Any, role: str, database: str) -> psycopg.Connection:
    db = psycopg.connect(cluster.url(role, database), autocommit=True)
    db.execute("SET search_path TO nbchat, public")
    return db


@pytest.fixture
def alice(pg_cluster: Any, pg_database: str) -> Iterator[psycopg.Connection]:
    with connect_as(pg_cluster, "alice", pg_database) as db:
        for sql in ALICE_ROWS.values():
            db.execute(sql)
        yield db


@pytest.fixture
def bob(pg_cluster: Any, pg_database: str) -> Iterator[psycopg.Connection]:
    with connect_as(pg_cluster, "bob", pg_database) as db:
        yield db


def count(db: psycopg.Connection, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_user_reads_every_own_row(alice: psycopg.Connection) -> None:
    for table in ALICE_ROWS:
        assert count(alice, table) == 1, table


def test_another_user_reads_none_of_them_even_with_raw_sql(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    for table in ALICE_ROWS:
        assert count(bob, table) == 0, table
    assert bob.execute("SELECT * FROM messages WHERE content LIKE '%merger%'").fetchall() == []
    assert bob.execute(
        "SELECT id FROM embeddings ORDER BY vector::vector(3) <=> '[1,0,0]' LIMIT 5"
    ).fetchall() == []


def test_another_user_cannot_change_or_delete_them(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    for table in ALICE_ROWS:
        assert bob.execute(f"DELETE FROM {table}").rowcount == 0, table
    assert bob.execute("UPDATE messages SET content = 'gone'").rowcount == 0
    assert bob.execute("UPDATE sessions SET owner = 'bob'").rowcount == 0
    for table in ALICE_ROWS:
        assert count(alice, table) == 1, table
    assert alice.execute("SELECT content FROM messages").fetchone()[0] == "the merger is secret"


def test_a_user_cannot_write_rows_in_another_name_or_into_another_session(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        bob.execute(
            "INSERT INTO sessions (id, owner, created, updated) VALUES ('s-x', 'alice', 1, 1)"
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        bob.execute(
            "INSERT INTO messages (session_id, seq, role, content, rendered, created) "
            "VALUES ('s-alice', 1, 'user', 'planted', 'planted', 1)"
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        alice.execute("UPDATE sessions SET owner = 'bob'")


def test_a_cache_hit_does_not_reveal_another_users_document(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    """Bob caching the same content gets his own row: no conflict tells him Alice has it."""
    bob.execute(ALICE_ROWS["extracts"].replace("memo text", "bob text"))
    bob.execute(ALICE_ROWS["token_counts"].replace("3)", "4)"))
    assert bob.execute("SELECT text FROM extracts").fetchall() == [("bob text",)]
    assert alice.execute("SELECT text FROM extracts").fetchall() == [("memo text",)]
    assert bob.execute(
        "INSERT INTO extracts (sha256, extractor_version, kind, text) "
        "VALUES ('sha-memo', 'v1', 'text', 'x') ON CONFLICT DO NOTHING"
    ).rowcount == 0  # his own row conflicts, not Alice's
    assert count(alice, "token_counts") == 1 and count(bob, "token_counts") == 1


def test_nothing_grants_table_rights_to_users(pg_cluster: Any, pg_database: str) -> None:
    with connect_as(pg_cluster, "alice", pg_database) as db:
        for sql in (
            "ALTER TABLE messages DISABLE ROW LEVEL SECURITY",
            "DROP POLICY own ON messages",
            "UPDATE schema_version SET version = 0",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql)


def share(db: psycopg.Connection, session_id: str, role: str) -> None:
    db.execute(
        "INSERT INTO session_shares (session_id, grantee, created) "
        "VALUES (%s, %s::regrole, %s)",
        (session_id, role, time.time()),
    )


def test_a_shared_session_is_readable_by_the_group_with_its_files(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    share(alice, "s-alice", GROUP)
    for table in SHARED_TABLES:
        assert count(bob, table) == 1, table
    assert bob.execute("SELECT data FROM files").fetchone()[0] == b"memo bytes"
    for table in ("extracts", "path_hashes", "token_counts", "embeddings", "file_chunks",
                  "sent_chunks", "chunk_vectors"):
        assert count(bob, table) == 0, table


def test_a_shared_session_is_not_writable_by_the_group(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    share(alice, "s-alice", GROUP)
    assert bob.execute("UPDATE messages SET content = 'edited'").rowcount == 0
    assert bob.execute("UPDATE sessions SET title = 'mine'").rowcount == 0
    assert bob.execute("DELETE FROM files").rowcount == 0
    assert bob.execute("DELETE FROM session_shares").rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        bob.execute(
            "INSERT INTO messages (session_id, seq, role, content, rendered, created) "
            "VALUES ('s-alice', 1, 'user', 'planted', 'planted', 1)"
        )
    assert alice.execute("SELECT content FROM messages").fetchall() == [
        ("the merger is secret",)
    ]
    assert alice.execute("SELECT title FROM sessions").fetchone()[0] == "plans"


def test_nbchat_refuses_a_turn_in_a_session_shared_read_only_and_stores_nothing(
    pg_cluster: Any, pg_database: str, alice: psycopg.Connection
) -> None:
    from nbchat.core.errors import StoreError
    from nbchat.core.postgres_store import PostgresStore

    share(alice, "s-alice", GROUP)
    with PostgresStore(pg_cluster.url("bob", pg_database)) as store:
        assert store.get_session("s-alice") is not None  # bob reads it
        with pytest.raises(StoreError, match="not yours to write"), store.transaction() as db:
            store.add_message(db, session_id="s-alice", role="user", content="planted",
                              rendered="planted")
        with pytest.raises(StoreError, match="not yours to write"), store.transaction() as db:
            store.add_message(db, session_id="no-such-session", role="user",
                              content="lost", rendered="lost")
        assert [m.content for m in store.messages("s-alice")] == ["the merger is secret"]
    assert alice.execute("SELECT updated FROM sessions").fetchone()[0] == 1


def test_a_session_shared_with_another_group_stays_private(
    pg_cluster: Any, alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    share(alice, "s-alice", ADMIN)  # a role bob is not a member of
    for table in SHARED_TABLES:
        assert count(bob, table) == 0, table


def test_only_the_owner_can_share_a_session(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not yours to share"):
        share(bob, "s-alice", GROUP)
    assert count(bob, "sessions") == 0


def test_word_search_finds_only_the_callers_own_messages(
    alice: psycopg.Connection, bob: psycopg.Connection
) -> None:
    """``word_hits`` runs as the tables' owner (to use the GIN index): it must still
    keep to the connected user's rows, shared sessions included."""
    search = (
        "SELECT m.content FROM word_hits(ARRAY['merger'], 10, "
        "NULL, NULL, NULL, NULL, NULL) h JOIN messages m ON m.id = h.id"
    )
    assert alice.execute(search).fetchall() == [("the merger is secret",)]
    share(alice, "s-alice", GROUP)
    assert bob.execute(
        "SELECT count(*) FROM word_hits(ARRAY['merger'], 10, "
        "'s-alice', NULL, NULL, NULL, NULL)"
    ).fetchone()[0] == 0


def test_a_users_chunks_are_read_from_that_users_extraction_only(
    pg_cluster: Any, pg_database: str
) -> None:
    """The chunk index holds offsets: Bob's chunks of a content only Alice has extracted
    are refused, and each user's chunk texts come from their own extraction."""
    from nbchat.core.attachments import chunk_rows
    from nbchat.core.errors import StoreError
    from nbchat.core.extractors.record import Extracted
    from nbchat.core.storage import open_store

    sha, version = "ab" * 32, "v1"
    alices = Extracted("Alice's memo: the merger closes in May.\n\nNothing else.", "text")
    bobs = Extracted("Bob's memo: lunch is at noon, says nobody.\n\nNothing more.", "text")
    alice = open_store(pg_cluster.url("alice", pg_database))
    bob = open_store(pg_cluster.url("bob", pg_database))
    try:
        with alice.transaction() as tx:
            alice.put_extract(tx, sha, version, alices)
            alice.put_chunks(tx, sha, version, chunk_rows(alices))
        with pytest.raises(StoreError, match="extracted text is not stored"):
            with bob.transaction() as tx:
                bob.put_chunks(tx, sha, version, chunk_rows(alices))
        assert not bob.has_chunks(sha, version) and bob.unembedded_chunks("m", 10) == []
        assert bob.rank_chunks(sha, version, ["merger"], 5) == []
        with bob.transaction() as tx:
            bob.put_extract(tx, sha, version, bobs)
            bob.put_chunks(tx, sha, version, chunk_rows(bobs))
        assert [c.text for c in alice.unembedded_chunks("m", 10)] == [alices.text]
        assert [c.text for c in bob.unembedded_chunks("m", 10)] == [bobs.text]
        assert bob.rank_chunks(sha, version, ["merger"], 5) == []
        assert alice.rank_chunks(sha, version, ["merger"], 5)[0][0] == 0
    finally:
        alice.close()
        bob.close()
