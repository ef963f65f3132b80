"""Recall's relevance floor: nothing unrelated is recalled, by meaning or by words.

The tests marked ``server`` use the real llama.cpp embeddings instance; the others a
small embeddings server whose model has no measured floor.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from nbchat.core.layout import RECALL_HEADING
from nbchat.core.sqlite_search import vector_to_blob
from rawsql import query
from nbchat.client import memory_for
from nbchat.notebook.recall import recall_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sse_server import answer  # noqa: E402


def floors():
    """The floor table (imported late, so the defect tests also run against older code)."""
    from nbchat.memory import floors as module

    return module

REPO = Path(__file__).resolve().parents[2]
PAIRS = REPO / "tests" / "files" / "recall_pairs.json"


def recalled_part(prepared) -> str:
    content = prepared.messages[-1]["content"]
    return content.split(RECALL_HEADING, 1)[1] if RECALL_HEADING in content else ""


@pytest.fixture
def soil_and_bread(make_client, send, chat_server):
    """Two finished sessions (a soil survey, baking), then a new session; four messages."""

    def build(**settings: object):
        client = make_client(**settings)
        client.new_session("Soil survey")
        chat_server.add(answer("Then plot 7 needs lime before planting."))
        send(client, "The pH of plot 7 came back at 5.2.")
        client.new_session("Baking")
        chat_server.add(answer("Bake the bread for 35 minutes, until it sounds hollow."))
        send(client, "Preheat the oven to 220 C for the bread.")
        client.new_session("Today")
        return client

    return build


# -- with the real embeddings engine -----------------------------------------------------


def test_a_question_about_plot_7_does_not_recall_another_sessions_oven_and_bread(
    soil_and_bread, embedding_url
):
    client = soil_and_bread(embedding_url=embedding_url)
    assert memory_for(client).wait_idle(300)

    prepared = client.prepare("What did we say earlier about plot 7?")

    block = recalled_part(prepared)
    assert "plot 7 came back at 5.2" in block and "needs lime" in block
    assert "oven" not in block and "bread" not in block


def test_recall_of_a_word_no_message_holds_says_no_match(soil_and_bread, embedding_url):
    client = soil_and_bread(embedding_url=embedding_url)
    assert memory_for(client).wait_idle(300)

    view = recall_command(client, "walrus")

    assert view.hits == ()
    assert view.text.startswith("No match for 'walrus'") and "words and meaning" in view.text


def test_the_floor_table_holds_what_the_bench_measures_on_the_labelled_set(embedding_url):
    bench = _bench_module()
    result = bench.measure(bench.load_pairs(PAIRS), embedding_url)

    assert result["model"].lower() in floors().COSINE_FLOORS
    assert floors().cosine_floor(result["model"]) == pytest.approx(result["floor"], abs=0.011)
    assert result["pairs"]["related"] >= 40


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "bench_recall_floor", REPO / "bench" / "bench_recall_floor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the lexical gate and uncalibrated models ------------------------------------------


def test_a_number_in_the_question_matches_only_that_number(make_client, send, chat_server):
    client = make_client()
    client.new_session("Churn model")
    chat_server.add(answer("Noted."))
    send(client, "The ROC AUC was 0.87 on the plot of the test set.")
    client.new_session("Today")

    prepared = client.prepare("What did we say earlier about plot 7?")

    assert recalled_part(prepared) == ""


def test_a_query_of_stopwords_only_matches_nothing(soil_and_bread):
    client = soil_and_bread()

    view = recall_command(client, "what did we say about the")

    assert view.hits == () and view.text.startswith("No match")


def test_an_uncalibrated_models_vectors_add_no_hits_of_their_own(
    soil_and_bread, fake_embeddings
):
    server = fake_embeddings()  # its model, fake-embed.gguf, has no measured floor
    client = soil_and_bread(embedding_url=server.url)
    memory = memory_for(client)
    assert memory.wait_idle(20)

    by_meaning = recall_command(client, "walrus")
    by_words = recall_command(client, "oven")

    assert floors().cosine_floor("fake-embed.gguf") == floors().UNCALIBRATED
    assert by_meaning.hits == () and "words and meaning" in by_meaning.text
    assert by_words.hits and all("oven" in hit.content for hit in by_words.hits)
    assert "has no measured cosine floor" in memory.status_text()


def test_the_floor_is_looked_up_by_the_stored_model_name_in_any_case():
    for model, floor in floors().COSINE_FLOORS.items():
        assert floors().cosine_floor(model.upper()) == floor
        assert 0.0 < floor <= 1.0


# -- changing the embedding model ----------------------------------------------------------


def message_count(client) -> int:
    return query(client.store, "SELECT COUNT(*) FROM messages WHERE content != ''")[0][0]


def vectors_of(client, model: str) -> int:
    return query(
        client.store, "SELECT COUNT(DISTINCT message_id) FROM embeddings WHERE model = ?", (model,)
    )[0][0]


def test_background_embedding_waits_while_a_turn_is_answered(make_client, fake_embeddings):
    client = make_client()
    session = client.store.create_session(title="Backlog")
    with client.store.transaction() as db:
        for number in range(60):
            text = f"Backlog message number {number}."
            client.store.add_message(
                db, session_id=session.id, role="user", content=text, rendered=text
            )
    server = fake_embeddings()
    memory = memory_for(client, server.url)

    memory.hold_embeddings()
    memory.embedder.notify()
    time.sleep(1.0)
    while_held = vectors_of(client, "fake-embed.gguf")
    memory.release_embeddings()

    assert while_held == 0
    assert memory.wait_idle(30)
    assert vectors_of(client, "fake-embed.gguf") == 60


def test_changing_the_embedding_model_re_embeds_in_the_background_without_holding_up_a_turn(
    make_client, send, fake_embeddings, embedding_url
):
    server = fake_embeddings()
    before = make_client(embedding_url=server.url)
    for number in range(45):
        send(before, f"Field note {number}: plot {number} was sampled for pH and nitrogen.")
    assert memory_for(before).wait_idle(60)
    assert vectors_of(before, "fake-embed.gguf") == message_count(before) == 90

    after = make_client(embedding_url=embedding_url)
    memory = memory_for(after)
    model = memory.client.model_name()
    started = time.monotonic()
    result = send(after, "Do you remember what plot 12 was sampled for?", recall=True)
    turn_s = time.monotonic() - started
    done_by_then = vectors_of(after, model)

    assert result.status == "complete"
    assert done_by_then < message_count(after)  # the turn did not wait for the backlog
    assert memory.wait_idle(900)
    assert vectors_of(after, model) == message_count(after) == 92, memory.status_text()
    assert vectors_of(after, "fake-embed.gguf") == 90  # kept: switching back is free
    assert floors().cosine_floor(model) != floors().UNCALIBRATED  # the new model's floor
    assert "has no measured cosine floor" not in memory.status_text()
    hits = memory.search("plot 12 sampled", limit=5)
    assert hits and all("plot" in hit.content for hit in hits)
    assert memory.last_search_used_vectors and memory.vector_index().count >= 92
    print(f"turn during the re-embedding: {turn_s:.2f} s")
