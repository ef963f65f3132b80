"""A database made by the first released schema opens with today's code and keeps its data.

``fixtures/schema_v1.sqlite`` was written by ``fixtures/make_schema_v1.py`` (m001 only,
then rows through SQL) and is committed, so later schema changes are always tested
against the same old file.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import nbchat
from nbchat.core import migrations
from nbchat.core.errors import StoreError
from nbchat.core.migrations import MIGRATIONS
from nbchat.core.sqlite_store import SqliteStore as Store
from dbcheck import half_written_turns, integrity, seq_problems

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
def old_db(db_path: Path) -> Path:
    """A copy of the v1 fixture at this test's ``NBCHAT_DB``."""
    shutil.copyfile(FIXTURE, db_path)
    return db_path


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


def test_an_old_conversation_continues_with_its_history_and_stored_files(old_db, fast_server):
    result = nbchat.chat("And what about @notes.md now?", session="a1b2c3d4",
                         base_url=fast_server.url)
    assert result.status == "complete" and result.session_id == "a1b2c3d4"
    sent = fast_server.chat_requests[-1].json["messages"]
    # The old turns are replayed exactly as they were sent; the failed one is left out.
    assert sent[0] == {"role": "system", "content": _fixture_system_prompt()}
    assert sent[1]["content"].startswith("=== BEGIN FILE budget.csv (csv, sha256:")
    assert sent[2]["content"] == "North grew faster: 135 against 120, **12.5%**."
    assert sent[4] == {"role": "assistant", "content": "```python\nimport matplotlib.pyplot as plt\n"}
    assert "Are you still there?" not in str(sent)
    assert "The quarterly review found churn fell to 3.1 percent." in sent[-1]["content"]
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
