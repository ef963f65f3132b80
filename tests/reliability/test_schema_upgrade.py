"""A database made by an older schema opens with today's code and keeps its data.

SQLite: ``fixtures/schema_v1.sqlite`` was written by ``fixtures/make_schema_v1.py`` (m001
only, then rows through SQL) and is committed, so later schema changes are always tested
against the same old file; a user's kernel upgrades it on opening.

PostgreSQL: a database the admin initialised up to each earlier step (m001, m002, ...)
holds the same rows (copied from that fixture, owned by ``alice``); ``nbchat db init
--admin URL`` upgrades it, and every row is still there, as it was.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbchat
from nbchat.core import migrations
from nbchat.core.errors import StoreError
from nbchat.core.migrations import MIGRATIONS
from nbchat.core import postgres_migrations
from nbchat.core.postgres_migrations import MIGRATIONS as PG_MIGRATIONS
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.core.attachments import chunk_rows
from nbchat.core.extractors.record import Extracted
from nbchat.core.storage import open_store
from nbchat.core.store import ChunkRow
from dbcheck import half_written_turns, integrity, rows, seq_problems
from needles import needle_document
from old_chunks import (
    M004_STEPS, M005_STEPS, m004_ranking, m005_pg_ranking, put_m004_chunks, sqlite_at_m004,
)
from pg_cluster import ADMIN

FIXTURE = Path(__file__).parent / "fixtures" / "schema_v1.sqlite"
V1_TABLES = ("sessions", "messages", "files", "attachments", "extracts", "path_hashes",
             "token_counts")


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in V1_TABLES}
    finally:
        db.close()


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def _fixture_system_prompt() -> str:
    db = sqlite3.connect(FIXTURE)
    try:
        return db.execute("SELECT system_prompt FROM sessions WHERE id = 'a1b2c3d4'").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def old_db(sqlite_path: Path) -> Path:
    """A copy of the v1 fixture at this test's ``NBCHAT_DB``."""
    shutil.copyfile(FIXTURE, sqlite_path)
    return sqlite_path


def test_the_fixture_is_a_version_1_database_with_data(old_db):
    assert _version(old_db) == 1
    rows = _dump(old_db)
    assert len(rows["sessions"]) == 3 and len(rows["messages"]) == 12
    assert all(rows[t] for t in V1_TABLES)


def test_a_version_1_database_is_migrated_and_keeps_every_row(old_db):
    before = _dump(old_db)
    with Store(old_db) as store:
        assert store.get_session("Budget review").id == "a1b2c3d4"
        assert [m.status for m in store.messages("a1b2c3d4")] == [
            "complete", "complete", "complete", "partial", "complete", "error"]
        notes = store.get_file("notes.md")
        assert notes is not None and b"churn fell" in store.file_bytes(notes.id)
        assert [a.name for a in store.attachments("e5f6a7b8")] == ["notes.md"]  # one forgotten
    assert _version(old_db) == len(MIGRATIONS)
    assert _dump(old_db) == before
    assert integrity(old_db) == "ok" and seq_problems(old_db) == []
    db = sqlite3.connect(old_db)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    has_fts = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone()
    if has_fts:  # m002 indexes the old messages too
        found = db.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'churn'").fetchall()
        assert sorted(r[0] for r in found) == [8]
    db.close()
    # Opening again changes nothing.
    with Store(old_db):
        pass
    assert _dump(old_db) == before and _version(old_db) == len(MIGRATIONS)


def continue_the_old_conversation(fast_server: Any) -> list[dict[str, Any]]:
    """A new turn in the fixture's "Budget review" session; the messages it sent, checked:
    the old turns replayed exactly as they were sent, the failed one left out."""
    result = nbchat.chat("And what about @notes.md now?", session="a1b2c3d4",
                         base_url=fast_server.url)
    assert result.status == "complete" and result.session_id == "a1b2c3d4"
    sent: list[dict[str, Any]] = fast_server.chat_requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": _fixture_system_prompt()}
    assert sent[1]["content"].startswith("=== BEGIN FILE budget.csv (csv, sha256:")
    assert sent[2]["content"] == "North grew faster: 135 against 120, **12.5%**."
    assert "Are you still there?" not in str(sent)
    assert "The quarterly review found churn fell to 3.1 percent." in sent[-1]["content"]
    return sent


def test_an_old_conversation_continues_with_its_history_and_stored_files(old_db, fast_server):
    sent = continue_the_old_conversation(fast_server)
    assert sent[4] == {"role": "assistant", "content": "```python\nimport matplotlib.pyplot as plt\n"}
    assert seq_problems(old_db) == [] and half_written_turns(old_db) == []


def test_a_migration_that_fails_half_way_leaves_the_old_database_as_it_was(old_db):
    before = _dump(old_db)

    def m999_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO no_such_table VALUES (1)")  # fails, as a full disk would

    MIGRATIONS.append(m999_broken)
    try:
        with pytest.raises(StoreError) as caught:
            Store(old_db)
    finally:
        MIGRATIONS.remove(m999_broken)
    assert "Move it aside" in str(caught.value) and str(old_db) in str(caught.value)
    assert migrations.MIGRATIONS is MIGRATIONS
    # Every step before the broken one landed; the broken one left nothing.
    assert _version(old_db) == len(MIGRATIONS)
    db = sqlite3.connect(old_db)
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    db.close()
    assert _dump(old_db) == before and integrity(old_db) == "ok"
    with Store(old_db) as store:  # and today's code opens it normally
        assert len(store.messages("e5f6a7b8")) == 4


# -- PostgreSQL: an older schema upgraded by the admin ----------------------------------------

ALICE = "alice"


def _fixture_rows() -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """Each v1 table's column names and rows, as the SQLite fixture holds them."""
    db = sqlite3.connect(FIXTURE)
    try:
        found = {}
        for table in V1_TABLES:
            cursor = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
            found[table] = ([d[0] for d in cursor.description], cursor.fetchall())
        return found
    finally:
        db.close()


def _pg_dump(cluster: Any, database: str, columns: dict[str, list[str]]) -> dict[str, list[Any]]:
    """The v1 columns (and owner) of every v1 table, read as the superuser."""
    with cluster.superuser(database) as db:
        return {
            table: db.execute(
                f"SELECT owner, {', '.join(names)} FROM nbchat.{table} "
                f"ORDER BY {', '.join(names)}"
            ).fetchall()
            for table, names in columns.items()
        }


def _init_postgres_at(admin_url: str, steps: int) -> None:
    """Initialise the database as an older nbchat would: its first ``steps`` steps."""
    saved = postgres_migrations.MIGRATIONS
    postgres_migrations.MIGRATIONS = saved[:steps]  # an older nbchat's list
    try:
        postgres_migrations.init_database(admin_url, report=lambda _: None)
    finally:
        postgres_migrations.MIGRATIONS = saved


@pytest.fixture(params=range(1, len(PG_MIGRATIONS)), ids=lambda k: f"at-m{k:03d}")
def pg_old_database(request: pytest.FixtureRequest, pg_cluster: Any,
                    pg_empty_database: str) -> tuple[str, int]:
    """A database the admin initialised up to step ``k`` (of an older nbchat), holding
    the v1 fixture's rows as ``alice``'s; returns its name and ``k``."""
    steps = request.param
    _init_postgres_at(pg_cluster.url(ADMIN, pg_empty_database), steps)
    with pg_cluster.superuser(pg_empty_database) as db:  # rows as alice's kernel wrote them
        for table, (names, rows) in _fixture_rows().items():
            values = [tuple(bool(v) if n == "forgotten" else v for n, v in zip(names, row))
                      for row in rows]
            with db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO nbchat.{table} (owner, {', '.join(names)}) "
                    f"OVERRIDING SYSTEM VALUE VALUES (%s, {', '.join(['%s'] * len(names))})",
                    [(ALICE, *row) for row in values],
                )
        for table in ("messages", "files", "attachments"):
            db.execute(f"SELECT setval(pg_get_serial_sequence('nbchat.{table}', 'id'), "
                       f"(SELECT max(id) FROM nbchat.{table}))")
    return pg_empty_database, steps


def test_an_older_postgres_schema_is_upgraded_by_db_init_and_keeps_every_row(
    pg_cluster: Any, pg_old_database: tuple[str, int]
) -> None:
    database, steps = pg_old_database
    columns = {table: names for table, (names, _) in _fixture_rows().items()}
    before = _pg_dump(pg_cluster, database, columns)
    assert sum(len(rows) for rows in before.values()) >= 25
    alice = pg_cluster.url(ALICE, database)
    with pytest.raises(StoreError, match="older than this nbchat needs"):  # a kernel waits
        open_store(alice)
    done = subprocess.run(
        [sys.executable, "-m", "nbchat", "db", "init", "--admin", pg_cluster.url(ADMIN, database)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for step in PG_MIGRATIONS[steps:]:
        assert step.__name__ in done.stdout + done.stderr
    assert PG_MIGRATIONS[steps - 1].__name__ not in done.stdout + done.stderr
    assert _pg_dump(pg_cluster, database, columns) == before
    with pg_cluster.superuser(database) as db:
        assert db.execute("SELECT version FROM nbchat.schema_version").fetchone()[0] == len(
            PG_MIGRATIONS)
        # The words of old messages are searchable (m002 indexes the rows already there).
        found = db.execute("SELECT id FROM nbchat.messages "
                           "WHERE words @@ plainto_tsquery('english', 'churn')").fetchall()
    assert sorted(r[0] for r in found) == [8]
    store = open_store(alice)
    try:
        assert store.get_session("Budget review").id == "a1b2c3d4"
        assert [m.status for m in store.messages("a1b2c3d4")] == [
            "complete", "complete", "complete", "partial", "complete", "error"]
        notes = store.get_file("notes.md")
        assert notes is not None and b"churn fell" in store.file_bytes(notes.id)
        assert [a.name for a in store.attachments("e5f6a7b8")] == ["notes.md"]
        assert [h.message_id for h in store.search("churn", limit=5)] == [8]
    finally:
        store.close()
    assert seq_problems(alice) == [] and half_written_turns(alice) == []
    assert integrity(alice) == "ok"


def test_an_old_postgres_conversation_continues_after_the_upgrade(
    pg_cluster: Any, pg_old_database: tuple[str, int], fast_server, monkeypatch
) -> None:
    database, _ = pg_old_database
    postgres_migrations.init_database(pg_cluster.url(ADMIN, database), report=lambda _: None)
    alice = pg_cluster.url(ALICE, database)
    monkeypatch.setenv("NBCHAT_DB", alice)
    continue_the_old_conversation(fast_server)
    assert seq_problems(alice) == [] and half_written_turns(alice) == []
    new_ids = [r[0] for r in rows(alice, "SELECT id FROM messages WHERE session_id = ? "
                                         "ORDER BY seq", ("a1b2c3d4",))]
    assert len(new_ids) == 8 and new_ids[-2:] == sorted(new_ids[-2:]) and new_ids[-2] > 12


# -- The chunk index without its text column (SQLite m005, PostgreSQL m006) -------------------

CHUNK_SHA = "5e" * 32
ORPHAN_SHA = "0f" * 32  # chunks whose extraction was never stored
CHUNK_VERSION = "old-1"
QUESTIONS = (["oxhollow", "warehouse"], ["sorrowby", "tunnel"], ["quarterly", "figures"],
             ["budget"], ["inspection", "crew", "spring"])
PLACES = ("SELECT id, sha256, extractor_version, idx, start, stop, label FROM file_chunks "
          "ORDER BY id")


def _needle_chunks() -> tuple[str, list[ChunkRow]]:
    text = needle_document().text
    return text, chunk_rows(Extracted(text, "text"))


def _same_ranking(now: list[list[tuple[int, float]]], before: list[list[tuple[int, float]]]):
    assert all(before)
    assert [[i for i, _ in r] for r in now] == [[i for i, _ in r] for r in before]
    assert [[s for _, s in r] for r in now] == [pytest.approx([s for _, s in r]) for r in before]


def test_a_database_at_m004_keeps_its_chunks_and_ranks_them_as_before(tmp_path: Path) -> None:
    from nbchat.core.sqlite_search import vector_to_blob

    text, chunks = _needle_chunks()
    path = tmp_path / "m004.sqlite"
    db = sqlite_at_m004(path)
    put_m004_chunks(db, CHUNK_SHA, CHUNK_VERSION, text, chunks)
    db.execute("INSERT INTO chunk_vectors (chunk_id, model, dim, vector) SELECT id, 'm', 2, ? "
               "FROM file_chunks WHERE sha256 = ? AND idx < 5",
               (vector_to_blob([1.0, 0.5]), CHUNK_SHA))
    places = [r for r in db.execute(PLACES) if r[1] == CHUNK_SHA]
    texts = dict(db.execute("SELECT id, text FROM file_chunks WHERE sha256 = ?", (CHUNK_SHA,)))
    vectors = db.execute("SELECT * FROM chunk_vectors ORDER BY chunk_id").fetchall()
    before = [m004_ranking(db, CHUNK_SHA, CHUNK_VERSION, terms, 10) for terms in QUESTIONS]
    db.close()
    with Store(path) as store:
        now = [store.rank_chunks(CHUNK_SHA, CHUNK_VERSION, terms, 10) for terms in QUESTIONS]
        unembedded = {c.chunk_id: c.text for c in store.unembedded_chunks("m2", 1000)}
    assert _version(path) == len(MIGRATIONS)
    _same_ranking(now, before)
    assert unembedded == texts and len(texts) == len(chunks)
    db = sqlite3.connect(path)
    try:
        assert db.execute(PLACES).fetchall() == places
        assert db.execute("SELECT * FROM chunk_vectors ORDER BY chunk_id").fetchall() == vectors
        assert "text" not in [r[1] for r in db.execute("PRAGMA table_info(file_chunks)")]
        db.execute("INSERT INTO file_chunks_fts(file_chunks_fts) VALUES ('integrity-check')")
    finally:
        db.close()
    assert integrity(path) == "ok"


def test_m004_chunks_without_their_extraction_are_dropped_to_be_indexed_again(
    tmp_path: Path,
) -> None:
    text, chunks = _needle_chunks()
    path = tmp_path / "m004.sqlite"
    db = sqlite_at_m004(path)
    put_m004_chunks(db, CHUNK_SHA, CHUNK_VERSION, text, chunks[:4])
    put_m004_chunks(db, ORPHAN_SHA, CHUNK_VERSION, None, chunks[:3])
    db.close()
    with Store(path) as store:
        assert store.has_chunks(CHUNK_SHA, CHUNK_VERSION)
        assert not store.has_chunks(ORPHAN_SHA, CHUNK_VERSION)  # indexed again when attached
        assert [c.text for c in store.unembedded_chunks("m", 10)] == [
            c.text for c in reversed(chunks[:4])]
        assert store.rank_chunks(ORPHAN_SHA, CHUNK_VERSION, ["the"], 5) == []


def test_an_sqlite_too_old_to_drop_a_column_is_named_and_the_database_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, chunks = _needle_chunks()
    path = tmp_path / "m004.sqlite"
    db = sqlite_at_m004(path)
    put_m004_chunks(db, CHUNK_SHA, CHUNK_VERSION, text, chunks[:4])
    db.close()
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(StoreError, match=r"needs SQLite 3.35 or newer .* SQLite 3.34.1"):
        Store(path)
    assert _version(path) == M004_STEPS
    db = sqlite3.connect(path)
    try:
        assert len(db.execute("SELECT text FROM file_chunks").fetchall()) == 4
    finally:
        db.close()


def test_a_postgres_database_at_m005_keeps_its_chunks_and_ranks_them_as_before(
    pg_cluster: Any, pg_empty_database: str
) -> None:
    import psycopg

    database = pg_empty_database
    _init_postgres_at(pg_cluster.url(ADMIN, database), M005_STEPS)
    text, chunks = _needle_chunks()
    alice = pg_cluster.url(ALICE, database)
    with psycopg.connect(alice, autocommit=True) as db:
        db.execute("SET search_path TO nbchat, public")
        put_m004_chunks(db, CHUNK_SHA, CHUNK_VERSION, text, chunks, placeholder="%s")
        put_m004_chunks(db, ORPHAN_SHA, CHUNK_VERSION, None, chunks[:3], placeholder="%s")
        db.execute("INSERT INTO chunk_vectors (chunk_id, model, dim, vector) SELECT id, 'm', "
                   "2, '[1,0.5]' FROM file_chunks WHERE sha256 = %s AND idx < 5", (CHUNK_SHA,))
        places = [r for r in db.execute(PLACES) if r[1] == CHUNK_SHA]
        texts = dict(db.execute("SELECT id, text FROM file_chunks WHERE sha256 = %s",
                                (CHUNK_SHA,)).fetchall())
        vectors = db.execute("SELECT chunk_id, model, vector::text FROM chunk_vectors "
                             "ORDER BY chunk_id").fetchall()
        before = [m005_pg_ranking(db, CHUNK_SHA, CHUNK_VERSION, terms, 10) for terms in QUESTIONS]
    with psycopg.connect(pg_cluster.url("bob", database), autocommit=True) as db:
        db.execute("SET search_path TO nbchat, public")  # chunks over Alice's extraction
        put_m004_chunks(db, CHUNK_SHA, CHUNK_VERSION, None, chunks[:2], placeholder="%s")
    postgres_migrations.init_database(pg_cluster.url(ADMIN, database), report=lambda _: None)
    store = open_store(alice)
    try:
        now = [store.rank_chunks(CHUNK_SHA, CHUNK_VERSION, terms, 10) for terms in QUESTIONS]
        unembedded = {c.chunk_id: c.text for c in store.unembedded_chunks("m2", 1000)}
        assert not store.has_chunks(ORPHAN_SHA, CHUNK_VERSION)
    finally:
        store.close()
    _same_ranking(now, before)
    assert unembedded == texts and len(texts) == len(chunks)
    with psycopg.connect(alice, autocommit=True) as db:
        db.execute("SET search_path TO nbchat, public")
        assert db.execute(PLACES).fetchall() == places
        assert db.execute("SELECT chunk_id, model, vector::text FROM chunk_vectors "
                          "ORDER BY chunk_id").fetchall() == vectors
    with pg_cluster.superuser(database) as db:
        assert db.execute("SELECT count(*) FROM nbchat.file_chunks WHERE owner = 'bob'"
                          ).fetchone()[0] == 0  # Bob has no extraction of his own
        columns = dict(db.execute(
            "SELECT column_name, is_generated FROM information_schema.columns "
            "WHERE table_schema = 'nbchat' AND table_name = 'file_chunks'").fetchall())
        assert "text" not in columns and columns["words"] == "NEVER"
        assert db.execute("SELECT 1 FROM pg_indexes WHERE schemaname = 'nbchat' "
                          "AND indexname = 'file_chunks_words'").fetchone()
        forced = db.execute("SELECT relname, relforcerowsecurity FROM pg_class WHERE relname "
                            "IN ('file_chunks', 'extracts') AND relnamespace = "
                            "'nbchat'::regnamespace").fetchall()
        assert sorted(forced) == [("extracts", True), ("file_chunks", True)]
    assert integrity(alice) == "ok"
