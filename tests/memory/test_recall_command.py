"""``%chat recall``: ranked hits, scopes, time words, and attaching a hit to the next turn."""

from __future__ import annotations

import time

import pytest

from nbchat.core.errors import ConfigError
from nbchat.core.layout import RECALL_HEADING
from nbchat.client import memory_for
from nbchat.notebook.recall import attach_message, recall_command

FACT = "The launch code for project Heron is 7421."


@pytest.fixture
def two_sessions(make_client, send):
    """A client whose notebook has a finished "Heron planning" session and a new one."""
    client = make_client()
    client.new_session("Heron planning")
    send(client, FACT)
    send(client, "The pipe | character needs escaping in tables.")
    client.new_session("Today")
    return client


def test_a_listing_ranks_hits_with_session_time_role_score_and_snippet(two_sessions):
    view = recall_command(two_sessions, "Heron launch code -n 3")

    assert 1 <= len(view.hits) <= 3
    first = view.hits[0]
    assert "7421" in first.content and first.session_title == "Heron planning"
    line = view.text.splitlines()[1]
    assert line.startswith(" 1. [1.00] Heron planning · ")
    assert time.strftime("%Y-%m-%d") in line
    assert f"(id {first.message_id})" in line and "7421" in line
    assert "| # | session | time | role | score | id | snippet |" in view.markdown
    assert view._repr_markdown_() == view.markdown


def test_markdown_cells_escape_table_syntax(two_sessions):
    view = recall_command(two_sessions, "pipe character")

    assert "pipe \\| character" in view.markdown


def test_the_default_scope_is_this_notebook_and_all_searches_every_session(
    two_sessions, make_client, send
):
    elsewhere = make_client(notebook="elsewhere.ipynb")
    elsewhere.new_session("Elsewhere")
    send(elsewhere, "Project Heron also needs a logo.")

    here = recall_command(two_sessions, "project Heron")
    everywhere = recall_command(two_sessions, "project Heron --all")

    assert {h.session_title for h in here.hits} == {"Heron planning"}
    assert {h.session_title for h in everywhere.hits} == {"Heron planning", "Elsewhere"}
    assert "this notebook's sessions" in here.text and "every session" in everywhere.text


def test_here_searches_only_the_current_session(two_sessions, send):
    send(two_sessions, "Project Heron gets a second launch window.")

    view = recall_command(two_sessions, "Heron launch --here")

    assert {h.session_title for h in view.hits} == {"Today"}


def test_time_words_in_the_query_filter_by_time(two_sessions):
    with two_sessions.store.transaction() as db:
        db.execute(
            "UPDATE messages SET created = created - 86400 WHERE session_id = "
            "(SELECT id FROM sessions WHERE title = 'Heron planning')"
        )

    yesterday = recall_command(two_sessions, "Heron yesterday")
    today = recall_command(two_sessions, "Heron today")

    assert yesterday.hits and "yesterday" in yesterday.text
    assert today.hits == () and "No match" in today.text


def test_an_attached_hit_goes_into_the_next_turn_only(two_sessions, send, chat_server):
    recall_command(two_sessions, "Heron launch code")
    note = recall_command(two_sessions, "--attach 1")

    prepared = two_sessions.prepare("Tell me a joke.")
    send(two_sessions, "Tell me a joke.")
    send(two_sessions, "Another one.")

    assert "will be added to the next turn" in note.text
    assert RECALL_HEADING in prepared.messages[-1]["content"]
    assert "7421" in prepared.messages[-1]["content"]
    sent_first, sent_second = chat_server.chat_requests[-2:]
    assert "7421" in sent_first.json["messages"][-1]["content"]
    assert RECALL_HEADING not in sent_second.json["messages"][-1]["content"]
    assert memory_for(two_sessions).attached_ids == []


def test_a_message_can_be_attached_by_its_id(two_sessions):
    hit = recall_command(two_sessions, "Heron").hits[0]

    attach_message(two_sessions, hit.message_id)
    prepared = two_sessions.prepare("Go on.")

    assert hit.content in prepared.messages[-1]["content"]


def test_clear_attaches_nothing_after_all(two_sessions):
    recall_command(two_sessions, "Heron")
    recall_command(two_sessions, "--attach 1")

    view = recall_command(two_sessions, "--clear")
    prepared = two_sessions.prepare("Go on.")

    assert "Cleared 1" in view.text
    assert RECALL_HEADING not in prepared.messages[-1]["content"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("", "needs something to search for"),
        ("--bogus heron", "unrecognized arguments"),
        ("--attach 5", "no hit 5"),
        ("--attach-id 999999", "No stored message with id 999999"),
        ("heron -n 0", "-n must be at least 1"),
    ],
)
def test_bad_command_lines_are_explained(two_sessions, argv, expected):
    with pytest.raises(ConfigError) as caught:
        recall_command(two_sessions, argv)

    assert expected in str(caught.value)
