"""Hybrid search on a real SQLite file: words (FTS5), vectors, fusion, filters."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from nbchat.core.migrations import MIGRATIONS
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.core.tokens import EstimateCounter
from nbchat.core.ranking import query_terms
from nbchat.core.sqlite_search import (
    VectorIndex,
    browse_messages,
    search_messages,
    vector_to_blob,
)
from nbchat.core.store import SearchFilter
from nbchat.memory.embed import chunk_text

DIM = 8


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "memory.sqlite") as opened:
        yield opened


def add(store: Store, session_id: str, role: str, content: str, *, created: float | None = None) -> int:
    with store.transaction() as db:
        message = store.add_message(db, session_id=session_id, role=role, content=content,
                                    rendered=content)
        if created is not None:
            db.execute("UPDATE messages SET created = ? WHERE id = ?", (created, message.id))
    return message.id


def add_vector(store: Store, message_id: int, vector, model: str = "current", chunk: int = 0) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, model, chunk, len(vector), vector_to_blob(vector), time.time()),
        )


def unit(index: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[index] = 1.0
    return vector


def test_words_alone_find_a_message_when_there_are_no_vectors(store):
    session = store.create_session(title="Birds")
    add(store, session.id, "user", "The herons nest near the old mill every spring.")
    add(store, session.id, "user", "Pelicans prefer the coast.")

    hits = search_messages(store.connection, "where do herons nest?", lock=store.lock)

    assert [h.content for h in hits] == ["The herons nest near the old mill every spring."]
    assert hits[0].session_title == "Birds"
    assert hits[0].lexical_rank == 1 and hits[0].vector_rank is None


def test_word_search_matches_other_forms_of_a_word(store):
    session = store.create_session(title="db")
    add(store, session.id, "assistant", "Both databases were migrated on Friday.")

    hits = search_messages(store.connection, "database migration", lock=store.lock)

    assert len(hits) == 1


def test_filters_keep_one_session_leave_one_out_and_bound_the_time(store):
    first = store.create_session(title="first")
    second = store.create_session(title="second")
    now = time.time()
    old = add(store, first.id, "user", "kiwi harvest notes", created=now - 3 * 86400)
    new = add(store, first.id, "user", "kiwi prices today", created=now)
    other = add(store, second.id, "user", "kiwi recipes", created=now)

    def ids(search_filter: SearchFilter) -> set[int]:
        return {
            h.message_id
            for h in search_messages(store.connection, "kiwi", search_filter=search_filter)
        }

    assert ids(SearchFilter()) == {old, new, other}
    assert ids(SearchFilter(session_id=first.id)) == {old, new}
    assert ids(SearchFilter(exclude_session_id=first.id)) == {other}
    assert ids(SearchFilter(since=now - 4 * 86400, until=now - 86400)) == {old}
    assert ids(SearchFilter(exclude_message_ids=frozenset({new}))) == {old, other}


def test_the_notebook_filter_keeps_that_notebooks_sessions(store):
    mine = store.create_session(title="mine", notebook="a.ipynb")
    theirs = store.create_session(title="theirs", notebook="b.ipynb")
    kept = add(store, mine.id, "user", "quokka facts")
    add(store, theirs.id, "user", "quokka photos")

    hits = search_messages(store.connection, "quokka", search_filter=SearchFilter(notebook="a.ipynb"))

    assert [h.message_id for h in hits] == [kept]


def test_a_message_found_by_words_and_meaning_ranks_above_one_found_one_way(store):
    session = store.create_session(title="s")
    both = add(store, session.id, "user", "the otter swims")
    words_only = add(store, session.id, "user", "an otter picture, otter otter")
    meaning_only = add(store, session.id, "user", "a seal dives")
    add_vector(store, both, unit(0) + 0.1 * unit(1))
    add_vector(store, words_only, unit(3))
    add_vector(store, meaning_only, unit(0))
    for i in range(60):  # nearer in meaning than words_only, which drops off that list
        add_vector(store, add(store, session.id, "user", f"filler {i}"), unit(0) + unit(2))
    index = VectorIndex("current")

    hits = search_messages(
        store.connection, "otter", index=index, query_vector=unit(0), lock=store.lock
    )

    assert hits[0].message_id == both
    assert hits[0].lexical_rank is not None and hits[0].vector_rank is not None
    assert {h.message_id for h in hits[1:]} >= {words_only, meaning_only}
    assert next(h for h in hits if h.message_id == meaning_only).lexical_rank is None


def test_vectors_of_another_model_are_ignored(store):
    session = store.create_session(title="s")
    current = add(store, session.id, "user", "first message")
    foreign = add(store, session.id, "user", "second message")
    add_vector(store, current, unit(1), model="current")
    add_vector(store, foreign, unit(0), model="another-model")
    index = VectorIndex("current")

    index.refresh(store.connection, store.lock)
    nearest = index.nearest(unit(0), 5)

    assert index.count == 1
    assert [message_id for message_id, _ in nearest] == [current]


def test_vectors_are_loaded_once_then_only_new_rows_are_added(store):
    session = store.create_session(title="s")
    ids = [add(store, session.id, "user", f"message {i}") for i in range(3)]
    for i, message_id in enumerate(ids):
        add_vector(store, message_id, unit(i))
    index = VectorIndex("current")

    assert index.refresh(store.connection, store.lock) == 3
    assert index.refresh(store.connection, store.lock) == 0
    later = add(store, session.id, "user", "message 3")
    add_vector(store, later, unit(3))
    assert index.refresh(store.connection, store.lock) == 1

    assert index.count == 4
    assert index.nearest(unit(3), 1)[0][0] == later


def test_a_message_with_several_chunks_scores_its_best_chunk_once(store):
    session = store.create_session(title="s")
    long_one = add(store, session.id, "assistant", "a long answer")
    short_one = add(store, session.id, "user", "a question")
    add_vector(store, long_one, unit(5), chunk=0)
    add_vector(store, long_one, unit(2), chunk=1)
    add_vector(store, short_one, unit(2) + unit(5))
    index = VectorIndex("current")
    index.refresh(store.connection)

    nearest = index.nearest(unit(2), 5)

    assert [message_id for message_id, _ in nearest] == [long_one, short_one]
    assert nearest[0][1] == pytest.approx(1.0)


def test_vector_filters_apply_to_time_and_session(store):
    first = store.create_session(title="first")
    second = store.create_session(title="second")
    now = time.time()
    old = add(store, first.id, "user", "one", created=now - 5 * 86400)
    recent = add(store, second.id, "user", "two", created=now)
    add_vector(store, old, unit(0))
    add_vector(store, recent, unit(0) + unit(1))
    index = VectorIndex("current")
    index.refresh(store.connection)

    last_day = SearchFilter(since=now - 86400)
    not_second = SearchFilter(exclude_session_id=second.id)

    assert [i for i, _ in index.nearest(unit(0), 5, last_day)] == [recent]
    assert [i for i, _ in index.nearest(unit(0), 5, not_second)] == [old]


def test_a_deleted_session_leaves_the_word_index(store):
    session = store.create_session(title="gone")
    add(store, session.id, "user", "platypus")
    store.delete_session(session.id)

    assert search_messages(store.connection, "platypus") == []


def test_browsing_a_time_window_returns_the_most_important_messages_first(store):
    session = store.create_session(title="s")
    now = time.time()
    add(store, session.id, "user", "outside the window", created=now - 10 * 86400)
    inside = add(store, session.id, "user", "inside the window", created=now - 3600)
    with store.transaction() as db:
        db.execute("UPDATE messages SET importance = 0.9 WHERE id = ?", (inside,))
    low = add(store, session.id, "assistant", "ok", created=now - 60)

    hits = browse_messages(store.connection, SearchFilter(since=now - 86400))

    assert [h.message_id for h in hits] == [inside, low]


def test_messages_stored_before_the_memory_migration_are_searchable(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO sessions (id, title, created, updated) VALUES ('s1', 'old', 0, 0)")
    db.execute(
        "INSERT INTO messages (session_id, seq, role, content, rendered, created) "
        "VALUES ('s1', 0, 'user', 'the wombat burrow', 'the wombat burrow', 0)"
    )
    db.close()

    with Store(path) as store:
        hits = search_messages(store.connection, "wombat")
        version = store.connection.execute("PRAGMA user_version").fetchone()[0]

    assert version == len(MIGRATIONS)
    assert [h.content for h in hits] == ["the wombat burrow"]


def test_query_terms_drop_stopwords_and_keep_numbers():
    assert query_terms("What is the code for project Heron? It's 7421.") == [
        "code", "project", "heron", "it's", "7421",
    ]


@hsettings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=4000))
def test_every_chunk_fits_the_limit_and_no_word_is_lost(text):
    counter = EstimateCounter()
    chunks = chunk_text(text, max_tokens=40)

    assert all(counter.count(chunk) <= 40 for chunk in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())
