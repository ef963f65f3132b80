import sqlite3

import pytest

from nbchat.core.errors import StoreError
from nbchat.core.migrations import MIGRATIONS
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.core.storage import open_store


def test_a_new_database_is_migrated_to_the_latest_schema_in_wal_mode(tmp_path):
    path = tmp_path / "db.sqlite"
    with Store(path):
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "messages", "files", "attachments", "extracts", "token_counts"} <= tables


def test_reopening_keeps_sessions_messages_and_files(database):
    path = database
    with open_store(path) as store:
        session = store.create_session(title="Budgets", notebook="a.ipynb", system_prompt="sys")
        with store.transaction() as db:
            store.add_message(db, session_id=session.id, role="user", content="q", rendered="Q")
            store.add_message(db, session_id=session.id, role="assistant", content="a", rendered="a")
        store.add_file("notes.txt", b"hello", sha256="x" * 64, mime="text/plain")
    with open_store(path) as store:
        assert store.get_session("Budgets").id == session.id
        assert store.latest_session_for_notebook("a.ipynb").id == session.id
        messages = store.messages(session.id)
        assert [(m.seq, m.role, m.content, m.rendered) for m in messages] == [
            (0, "user", "q", "Q"),
            (1, "assistant", "a", "a"),
        ]
        found = store.get_file("notes.txt")
        assert found is not None and store.file_bytes(found.id) == b"hello"
        assert store.get_file(str(found.id)).name == "notes.txt"


def test_text_with_nul_characters_is_stored_and_read_back_as_written(database):
    """PostgreSQL's text cannot hold NUL, SQLite's can: the team store escapes it
    (reversibly, U+FFFF being the escape), so both give back exactly what was stored."""
    odd = ["a\x00b", "\x00", "\uffff0", "\uffff\x00\uffff", "plain \x1b[0m"]
    with open_store(database) as store:
        session = store.create_session(title="t\x00itle", system_prompt="sys\x00\uffff")
        with store.transaction() as db:
            for text in odd:
                store.add_message(db, session_id=session.id, role="user", content=text,
                                  rendered=text + "\x00")
    with open_store(database) as store:
        found = store.get_session("t\x00itle")
        assert found is not None and found.id == session.id
        assert found.system_prompt == "sys\x00\uffff"
        messages = store.messages(session.id)
        assert [m.content for m in messages] == odd
        assert [m.rendered for m in messages] == [text + "\x00" for text in odd]


def test_a_failed_transaction_leaves_nothing_behind(database):
    with open_store(database) as store:
        session = store.create_session(title="t")
        with pytest.raises(RuntimeError):
            with store.transaction() as db:
                store.add_message(db, session_id=session.id, role="user", content="q", rendered="q")
                raise RuntimeError("crash in the middle of a turn")
        assert store.messages(session.id) == []


def test_storing_a_file_twice_under_one_name_replaces_its_bytes(database):
    with open_store(database) as store:
        first = store.add_file("a.txt", b"one", sha256="1" * 64, mime="text/plain")
        second = store.add_file("a.txt", b"two", sha256="2" * 64, mime="text/plain")
        assert first.id == second.id
        assert store.file_bytes(second.id) == b"two"
        assert [f.name for f in store.list_files()] == ["a.txt"]
        assert store.remove_file("a.txt").name == "a.txt"
        assert store.list_files() == []


def test_attachments_are_recorded_once_per_session_and_content(database):
    with open_store(database) as store:
        session = store.create_session()
        with store.transaction() as db:
            for _ in range(3):
                store.record_attachment(db, session_id=session.id, message_id=None, kind="path",
                                        name="a.pdf", path="/x/a.pdf", sha256="s" * 64)
        assert len(store.attachments(session.id)) == 1
        assert store.forget_attachment(session.id, "a.pdf") == 1
        assert store.attachments(session.id) == []
        assert len(store.attachments(session.id, include_forgotten=True)) == 1


def test_a_database_newer_than_the_code_is_refused_with_advice(tmp_path):
    path = tmp_path / "db.sqlite"
    with Store(path):
        pass
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="upgrade nbchat"):
        Store(path)


def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        Store(path)


def test_history_read_again_includes_messages_another_connection_stored(database):
    with open_store(database) as mine, open_store(database) as theirs:
        session = mine.create_session(title="shared")
        with mine.transaction() as db:
            mine.add_message(db, session_id=session.id, role="user", content="1", rendered="1")
        assert [m.content for m in mine.messages(session.id)] == ["1"]
        with theirs.transaction() as db:
            theirs.add_message(db, session_id=session.id, role="assistant", content="2", rendered="2")
        assert [m.content for m in mine.messages(session.id)] == ["1", "2"]
        assert [m.content for m in mine.messages(session.id, from_seq=1)] == ["2"]
