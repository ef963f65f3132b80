"""Background embeddings: never in the cell's way, caught up later, chunked when long.

Tests marked ``server`` use the real llama.cpp embeddings instance (640-d, mean pooling);
the others use a small embeddings server on a real socket that can be slow or strict.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from nbchat.core.sqlite_search import vector_to_blob
from rawsql import execute, query
from nbchat.memory.embed import EmbeddingClient, EmbeddingError
from nbchat.client import memory_for
from nbchat.notebook.recall import recall_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sse_server import answer, dead_url  # noqa: E402

FACT = "The launch code for project Heron is 7421."


def vector_rows(client, model: str | None = None) -> list[tuple[int, str, int, int]]:
    sql = "SELECT message_id, model, chunk, dim FROM embeddings"
    params: tuple[str, ...] = ()
    if model is not None:
        sql += " WHERE model = ?"
        params = (model,)
    return [tuple(r) for r in query(client.store, sql + " ORDER BY id", params)]


def message_ids(client) -> set[int]:
    return {r[0] for r in query(client.store, "SELECT id FROM messages")}


# -- against a small local embeddings server ---------------------------------------------


def test_a_slow_embeddings_server_does_not_hold_up_the_turn(make_client, send, fake_embeddings):
    server = fake_embeddings(delay_s=2.0)
    client = make_client(embedding_url=server.url)

    started = time.monotonic()
    result = send(client, FACT)
    elapsed_s = time.monotonic() - started
    stored_by_then = vector_rows(client)

    assert result.status == "complete"
    assert elapsed_s < 2.0 and stored_by_then == []  # the turn did not wait for them
    assert memory_for(client).wait_idle(20)
    assert {row[0] for row in vector_rows(client)} == message_ids(client)
    assert {row[1] for row in vector_rows(client)} == {"fake-embed.gguf"}


def test_a_dead_embeddings_server_leaves_chat_working_and_says_embeddings_are_off(
    make_client, send
):
    client = make_client(embedding_url=dead_url())

    first = send(client, FACT)
    second = send(client, "And what is the weather like?")
    memory = memory_for(client)
    assert memory.wait_idle(20)

    assert (first.status, second.status) == ("complete", "complete")
    assert vector_rows(client) == []
    assert memory.status_text().startswith("embeddings off")
    assert "Traceback" not in memory.status_text()


def test_turns_stored_while_the_server_was_down_are_caught_up(
    make_client, send, fake_embeddings, _private_database
):
    down = make_client(embedding_url=dead_url())
    send(down, FACT)
    send(down, "Another turn.")
    assert memory_for(down).wait_idle(20)
    server = fake_embeddings()
    up = make_client(embedding_url=server.url)

    caught_up = memory_for(up).catch_up()

    assert caught_up == 4
    assert {row[0] for row in vector_rows(up)} == message_ids(up)
    assert memory_for(up).catch_up() == 0


def test_catch_up_raises_a_clear_error_when_the_server_is_down(make_client, send):
    client = make_client(embedding_url=dead_url())
    send(client, FACT)

    with pytest.raises(EmbeddingError) as caught:
        memory_for(client).catch_up()

    assert "embeddings server" in str(caught.value)
    assert "NBCHAT_EMBEDDING_URL" in str(caught.value)


def test_a_message_too_long_for_the_server_is_split_until_it_fits(
    make_client, send, fake_embeddings
):
    server = fake_embeddings(max_input_chars=400)
    client = make_client(embedding_url=server.url)
    long_answer = " ".join(f"sentence{i} has some words." for i in range(200))

    send(client, long_answer)
    assert memory_for(client).wait_idle(20)

    rows = vector_rows(client)
    user_chunks = [r for r in rows if r[0] == min(message_ids(client))]
    assert len(user_chunks) > 3
    assert all(len(text) <= 400 for text in server.inputs)
    joined = " ".join(t for t in server.inputs if "sentence" in t and not t.startswith("Echo"))
    assert "sentence0 " in joined and "sentence199 " in joined


def test_messages_with_only_another_models_vectors_are_embedded_again(
    make_client, send, fake_embeddings
):
    client = make_client()
    send(client, FACT)
    with client.store.transaction() as db:
        for message_id in message_ids(client):
            vector = vector_to_blob([1.0, 0.0, 0.0]) if hasattr(client.store, "path") else (
                "[1,0,0]")  # PostgreSQL's vector type reads its text form
            execute(
                db,
                "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
                "VALUES (?, 'retired-model', 0, 3, ?, 0)",
                (message_id, vector),
            )
    server = fake_embeddings()
    current = make_client(embedding_url=server.url)

    assert memory_for(current).catch_up() == 2
    assert len(vector_rows(current, "fake-embed.gguf")) == 2
    assert len(vector_rows(current, "retired-model")) == 2


def test_a_connection_closed_before_any_answer_is_tried_once_more(fake_embeddings):
    server = fake_embeddings(hang_ups=1)
    client = EmbeddingClient(server.url, model="fake-embed.gguf")
    try:
        vectors = client.embed(["a short note"])
    finally:
        client.close()
    assert vectors == [server.vector("a short note")]
    assert server.posts == 2


def test_a_server_that_keeps_hanging_up_is_a_clear_error(fake_embeddings):
    server = fake_embeddings(hang_ups=2)
    client = EmbeddingClient(server.url, model="fake-embed.gguf")
    try:
        with pytest.raises(EmbeddingError, match="Cannot reach the embeddings server"):
            client.embed(["a short note"])
    finally:
        client.close()
    assert server.posts == 2


def test_a_server_answer_without_vectors_is_a_clear_error(chat_server):
    client = EmbeddingClient(chat_server.url)  # a chat server, not an embeddings one
    try:
        with pytest.raises(EmbeddingError) as caught:
            client.embed(["hello"])
    finally:
        client.close()

    assert chat_server.url in str(caught.value)


# -- against the real llama.cpp embeddings instance ---------------------------------------


def test_a_fact_from_one_session_is_found_from_another_by_recall_and_by_the_planner(
    make_client, send, embedding_url
):
    client = make_client(embedding_url=embedding_url)
    client.new_session("Heron planning")
    send(client, FACT)
    send(client, "Also, the backup site is in Porto.")
    heron = client.session_id
    memory = memory_for(client)
    assert memory.wait_idle(60)
    with client.store.transaction() as db:
        execute(db, "UPDATE messages SET created = created - 86400 WHERE session_id = ?", (heron,))
    client.new_session("Today")

    listing = recall_command(client, "project Heron launch code")
    prepared = client.prepare("What did we discuss yesterday about project Heron?")

    top = listing.hits[0]  # the fact, or the echo of it
    assert top.session_title == "Heron planning" and "7421" in top.content
    assert top.lexical_rank is not None and top.vector_rank is not None
    assert "words and meaning" in listing.text
    block = prepared.messages[-1]["content"]
    assert "7421" in block and 'session "Heron planning"' in block
    assert prepared.report.recall_tokens > 0
    dims = {row[3] for row in vector_rows(client)}
    assert dims == {640}


def test_the_real_server_embeds_a_long_message_in_several_chunks(
    make_client, send, embedding_url, chat_server
):
    chat_server.add(answer("Noted."))  # a short answer: only the question is long
    client = make_client(embedding_url=embedding_url)
    text = "\n\n".join(
        f"Paragraph {i}: the observatory logged comet sightings on night {i}. " * 4
        for i in range(6)
    )

    send(client, text)
    memory = memory_for(client)
    assert memory.wait_idle(120)

    first = min(message_ids(client))
    chunks = [r for r in vector_rows(client) if r[0] == first]
    assert len(chunks) > 1
    assert memory.status_text().startswith("embeddings on")


def test_the_real_server_catches_up_turns_stored_while_it_was_unknown(
    make_client, send, embedding_url
):
    offline = make_client(embedding_url=dead_url())
    send(offline, FACT)
    assert memory_for(offline).wait_idle(20)
    online = make_client(embedding_url=embedding_url)

    assert memory_for(online).catch_up() == 2
    hits = memory_for(online).search("Heron launch code")
    assert hits and hits[0].vector_rank is not None
