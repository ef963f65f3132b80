"""ChatClient (nbchat/client.py): it runs a turn top to bottom and keeps what it stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbchat.client import ChatClient
from nbchat.core.events import TextDelta
from nbchat.core.settings import Settings
from nbchat.core.turn import TurnResult
from sse_server import ScriptedServer, answer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    reply = answer("one two three four five six seven eight", piece_chars=4, pause_s=0.05)
    with ScriptedServer(default=reply) as running:
        yield running


@pytest.fixture
def client(server: ScriptedServer, tmp_path: Path) -> Iterator[ChatClient]:
    settings = Settings(backend="llama", base_url=server.url, db_path=tmp_path / "chat.sqlite")
    made = ChatClient(settings)
    yield made
    made.close()


def test_a_turn_closed_after_its_first_words_keeps_its_partial_result_on_the_client(client):
    events = client.run(client.prepare("Count to eight, please."))
    first = next(event for event in events if isinstance(event, TextDelta))
    events.close()  # what a Stop button or Ctrl-C does

    kept = client.last_result
    assert kept is not None and kept.status == "partial"
    assert kept.error_kind == "interrupted" and kept.text.startswith(first.text)
    assert client.session_id == kept.session_id  # the next turn continues this session
    stored = client.store.messages(kept.session_id)
    assert [(m.role, m.status, m.content) for m in stored][-1] == ("assistant", "partial", kept.text)


def test_a_finished_turn_is_the_kept_result(client):
    results = [e for e in client.run(client.prepare("Count.")) if isinstance(e, TurnResult)]
    assert client.last_result == results[0] and results[0].status == "complete"


def test_the_server_is_checked_once_per_turn(client, server):
    prepared = client.prepare("Count.")
    server.requests.clear()
    list(client.run(prepared))
    assert len(server.requests_to("/health")) == 1
    assert len(server.chat_requests) == 1


def test_server_url_names_where_turns_go(client, server):
    assert client.server_url() == server.url
