"""The retrieval planner on real stored conversations (a scripted chat server, no vectors)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

import nbchat.api as api
from nbchat.core.layout import RECALL_HEADING
from nbchat.core.tokens import EstimateCounter
from nbchat.memory.planner import (
    build_block,
    decide_recall,
    find_time_range,
    refers_to_earlier,
    topic_query,
)
from nbchat.core.store import Hit
from rawsql import execute

FACT = "The launch code for project Heron is 7421."


def recalled_part(prepared) -> str:
    content = prepared.messages[-1]["content"]
    if RECALL_HEADING not in content:
        return ""
    return content.split(RECALL_HEADING, 1)[1]


def move_session_back(client, session_id: str, seconds: float) -> None:
    with client.store.transaction() as db:
        execute(
            db, "UPDATE messages SET created = created - ? WHERE session_id = ?",
            (seconds, session_id),
        )


@pytest.mark.parametrize(
    "prompt",
    [
        "What did we discuss yesterday about Heron?",
        "As you said earlier, the code matters.",
        "Remind me what I told you last time.",
        "Do you remember the launch code?",
        "In a previous session we picked a name.",
        "What did I say about it before?",
        "We discussed this three days ago.",
        "Last week you suggested a library.",
    ],
)
def test_questions_about_earlier_talk_trigger_recall(prompt):
    assert refers_to_earlier(prompt)
    assert decide_recall(prompt, session_id="s").reason == "reference"


@pytest.mark.parametrize(
    "prompt",
    [
        "Sort the list before merging it.",
        "What is the capital of France?",
        "Explain the previous line of this code.",
        "Write a haiku about herons today.",
    ],
)
def test_ordinary_questions_do_not_trigger_recall(prompt):
    assert not refers_to_earlier(prompt)
    assert decide_recall(prompt, session_id="s") is None


def test_asking_and_compaction_trigger_recall_with_their_own_scope():
    asked = decide_recall("anything", session_id="s", forced=True)
    compacted = decide_recall("anything", session_id="s", compacted=True)

    assert (asked.reason, asked.session_id) == ("asked", None)
    assert (compacted.reason, compacted.session_id, compacted.vector_only_hits) == (
        "compaction", "s", 0,
    )


def test_time_words_become_local_calendar_ranges():
    now = datetime(2025, 3, 12, 15, 30).astimezone()  # a Wednesday
    day = datetime(2025, 3, 11).astimezone()

    yesterday = find_time_range("what did we say yesterday?", now)
    last_week = find_time_range("last week you said", now)
    days_ago = find_time_range("two days ago", now)
    monday = find_time_range("on Monday we talked", now)

    assert (yesterday.since, yesterday.until) == (
        day.timestamp(), datetime(2025, 3, 12).astimezone().timestamp(),
    )
    assert last_week.since == datetime(2025, 3, 3).astimezone().timestamp()
    assert last_week.until == datetime(2025, 3, 10).astimezone().timestamp()
    assert days_ago.since == datetime(2025, 3, 10).astimezone().timestamp()
    assert monday.since == datetime(2025, 3, 10).astimezone().timestamp()
    assert find_time_range("what is a heron?", now) is None


def test_the_search_words_leave_out_the_words_about_when():
    assert topic_query("What did we discuss yesterday about project Heron?") == "project heron"


def test_the_block_stays_under_the_budget_and_cuts_a_long_hit_visibly():
    counter = EstimateCounter()
    long_text = " ".join(f"word{i}" for i in range(2000))
    hits = [
        Hit(1, "s", "Long talk", 0, "assistant", long_text, time.time(), 0.03),
        Hit(2, "s", "Short talk", 0, "user", "A short fact.", time.time() - 60, 0.02),
    ]

    text, used = build_block(hits, counter, budget_tokens=300)

    assert counter.count(text) <= 300
    assert [h.message_id for h in used] == [2, 1]  # said first, listed first
    assert "[truncated" in text and 'session "Short talk"' in text


def test_a_fact_from_another_session_is_recalled_when_the_user_refers_to_yesterday(
    make_client, send
):
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    move_session_back(client, client.session_id, 86400)
    client.new_session("Today")

    prepared = client.prepare("What did we discuss yesterday about project Heron?")

    block = recalled_part(prepared)
    assert "7421" in block and 'session "Heron planning"' in block
    assert time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400)) in block
    assert prepared.report.recall_tokens > 0
    assert any("Recalled" in notice for notice in prepared.notices)


def test_the_time_filter_keeps_out_what_was_said_on_another_day(make_client, send):
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    move_session_back(client, client.session_id, 5 * 86400)
    client.new_session("Today")

    prepared = client.prepare("What did we discuss yesterday about project Heron?")

    assert recalled_part(prepared) == ""
    assert prepared.report.recall_tokens == 0


def test_results_already_in_the_prompt_are_skipped(make_client, send):
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)

    same_session = client.prepare("Remind me what I said earlier about project Heron?")

    assert recalled_part(same_session) == ""
    assert same_session.report.recall_tokens == 0
    other = make_client(notebook="other.ipynb")
    other.new_session("Copy")
    send(other, FACT)  # the same words, stored in another session
    again = client.prepare("Remind me what I said earlier about project Heron?")
    assert recalled_part(again) == ""


def test_the_recalled_block_and_its_cost_appear_in_a_dry_run(
    make_client, send, chat_server, monkeypatch
):
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    monkeypatch.setenv("NBCHAT_BASE_URL", chat_server.url)
    monkeypatch.setattr(api, "_DEFAULT", None)

    prepared = api.dry_run("project Heron", new=True, recall=True)
    plain = api.dry_run("project Heron", new=True)

    assert "7421" in recalled_part(prepared)
    assert prepared.report.recall_tokens > 0
    added = prepared.report.total_tokens - plain.report.total_tokens
    assert added >= prepared.report.recall_tokens
    assert "recalled context" in prepared.report.as_text()
    assert recalled_part(plain) == ""
    api.default_client().close()


def test_the_recalled_block_is_sent_and_then_replayed_unchanged(make_client, send, chat_server):
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    client.new_session("Later")

    send(client, "project Heron", recall=True)
    send(client, "thanks")

    first, second = chat_server.chat_requests[-2:]
    sent = first.json["messages"][-1]["content"]
    assert "7421" in sent
    assert second.json["messages"][-3]["content"] == sent  # a byte-stable prefix


def test_forced_recall_that_finds_nothing_says_so(make_client):
    client = make_client()

    prepared = client.prepare("xylophone", recall=True)

    assert recalled_part(prepared) == ""
    assert any("found no earlier messages" in notice for notice in prepared.notices)


def test_compaction_recalls_a_dropped_turn(make_client, send):
    client = make_client(context_window=900, max_tokens=100)
    client.new_session("Long talk")
    send(client, "Note that the vault combination is 5912.")
    padding = " ".join(f"filler{i}" for i in range(60))
    dropped_at = None
    for turn in range(12):
        result = send(client, f"Turn {turn}: {padding}")
        if result.report.dropped_turns:
            dropped_at = turn
            break
    assert dropped_at is not None, "the history never compacted"

    prepared = client.prepare("Which vault combination did I give you?")

    assert client.current_session().history_start_seq > 0
    assert "5912" in recalled_part(prepared)
    history = "".join(m["content"] for m in prepared.messages[:-1])
    assert "5912" not in history
    assert any("compacted" in notice for notice in prepared.notices)


def test_the_turn_that_compacts_recalls_what_it_drops(make_client, send):
    client = make_client(context_window=900, max_tokens=100)
    client.new_session("Long talk")
    send(client, "Note that the vault combination is 5912.")
    padding = " ".join(f"filler{i}" for i in range(60))
    for turn in range(12):
        prepared = client.prepare(f"Turn {turn} about the vault combination: {padding}")
        if prepared.report.dropped_turns:
            break
        send(client, f"Turn {turn}: {padding}")
    assert prepared.report.dropped_turns > 0

    assert "5912" in recalled_part(prepared)


def test_a_broken_word_index_costs_only_the_recall(make_client, send, database):
    if isinstance(database, str):
        pytest.skip("SQLite's FTS5 index; PostgreSQL's word index is a column of its own")
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    with client.store.transaction() as db:  # a damaged full-text index: a plain table
        for name in ("insert", "delete", "update"):
            db.execute(f"DROP TRIGGER messages_fts_{name}")
        db.execute("DROP TABLE messages_fts")
        db.execute("CREATE TABLE messages_fts (x TEXT)")
    client.new_session("Today")

    prepared = client.prepare("What did we discuss earlier about project Heron?")
    result = send(client, "What did we discuss earlier about project Heron?")

    assert recalled_part(prepared) == ""
    assert any("Recall was skipped" in notice for notice in prepared.notices)
    assert all("Traceback" not in notice for notice in prepared.notices)
    assert result.status == "complete"


def test_after_compaction_a_single_shared_word_is_not_enough_to_recall(make_client, send):
    client = make_client(context_window=900, max_tokens=100)
    client.new_session("Long talk")
    send(client, "Note that the vault combination is 5912.")
    padding = " ".join(f"filler{i}" for i in range(60))
    for turn in range(12):
        if send(client, f"Turn {turn}: {padding}").report.dropped_turns:
            break
    assert client.current_session().history_start_seq > 0

    unrelated = client.prepare("Pick a colour combination for the logo.")
    related = client.prepare("Pick the vault combination again.")

    assert "5912" not in recalled_part(unrelated)
    assert "5912" in recalled_part(related)
