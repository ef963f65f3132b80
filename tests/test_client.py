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


def test_a_large_files_chunks_and_words_are_split_once_for_the_whole_conversation(
    server, tmp_path, monkeypatch
):
    """Each turn asks every partly sent file which chunks hold its words: the client
    keeps each file's chunks and words for the kernel, so no turn splits them again."""
    import sys
    from collections import Counter

    from nbchat.core import chunks
    from nbchat.core.passages import seen_parts
    from needles import needle_document

    document = needle_document()
    report = tmp_path / "report.txt"
    report.write_text(document.text, encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text(needle_document(120_000, seed=7).text, encoding="utf-8")
    split: Counter[int] = Counter()  # chunk_text calls, by the length of the text cut
    real = chunks.chunk_text

    def counted(text, sections=(), *args, **kwargs):
        split[len(text)] += 1
        return real(text, sections, *args, **kwargs)

    for module in list(sys.modules.values()):
        if module.__name__.startswith("nbchat") and getattr(module, "chunk_text", None) is real:
            monkeypatch.setattr(module, "chunk_text", counted)
    settings = Settings(backend="llama", base_url=server.url, db_path=tmp_path / "chat.sqlite",
                        context_window=8192, max_tokens=512)
    client = ChatClient(settings)
    try:
        list(client.run(client.prepare(document.facts[0].question, [report, notes])))
        brought = []
        for fact in document.facts[1:5]:
            client.prepare(fact.question, count_prompt=True)  # a dry run first
            prepared = client.prepare(fact.question)
            list(client.run(prepared))
            brought += [p.name for p in prepared.report.brought_in]
        sizes = [len(document.text), len(notes.read_text(encoding="utf-8"))]
        # Once for the kernel's table, once for the store's index on the first turn.
        assert [split[size] for size in sizes] == [2, 2], split
        assert "report.txt" in brought  # the later turns did choose passages
        session = client.session_id
        assert session is not None
        seen = seen_parts(client.store, session, client.store.attachments(session),
                          client.chunk_words)
        assert len(seen) == 2 and all(" seen, ~" in line for line in seen.values()), seen
        assert [split[size] for size in sizes] == [2, 2], split
        assert client.chunk_words.builds == 2
    finally:
        client.close()
