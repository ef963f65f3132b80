"""Vectors for large files' chunks: made in the background, fused with the words.

The fake embeddings server's vectors count hashed words, so a chunk sharing the
question's words is near it; its model has no calibrated cosine floor unless a test
gives it one.
"""

from __future__ import annotations

from nbchat.client import memory_for
from nbchat.core.extract import EXTRACTOR_VERSION
from nbchat.memory import floors

from needles import needle_document
from rawsql import query

WINDOW = 8192


def test_chunks_get_vectors_in_the_background_and_rank_by_meaning_too(
    make_client, send, fake_embeddings, tmp_path, monkeypatch
):
    server = fake_embeddings(dim=64)
    document = needle_document()
    path = tmp_path / "report.txt"
    path.write_text(document.text, encoding="utf-8")
    client = make_client(embedding_url=server.url, context_window=WINDOW)
    fact = document.facts[7]
    result = send(client, fact.question, files=[path])
    memory = memory_for(client)
    assert memory.wait_idle(60)
    chunks = query(client.store, "SELECT count(*) FROM file_chunks")[0][0]
    vectors = query(client.store, "SELECT count(*) FROM chunk_vectors")[0][0]
    assert chunks > 100 and vectors == chunks
    # A chunk's own text is nearest to itself, at cosine 1, and the others are further.
    sha = client.store.attachments(result.session_id)[0].sha256
    extract = client.store.cached_extract(sha, EXTRACTOR_VERSION)
    assert extract is not None
    idx, text = next(
        (idx, extract.text[start:stop])
        for idx, start, stop in query(client.store, "SELECT idx, start, stop FROM file_chunks "
                                      "WHERE sha256 = ? ORDER BY idx", (sha,))
        if "Oxhollow" in extract.text[start:stop]
    )
    nearest = client.store.rank_chunk_vectors(
        sha, EXTRACTOR_VERSION, "fake-embed.gguf", server.vector(text), 3)
    assert nearest[0][0] == idx and abs(nearest[0][1] - 1.0) < 1e-4
    assert nearest[1][1] < nearest[0][1]
    # With vectors on (and a floor for this model), a later question still finds its
    # passage, now chosen for its words and its meaning.
    later = document.facts[9]
    near = client.store.rank_chunk_vectors(
        sha, EXTRACTOR_VERSION, "fake-embed.gguf", server.vector(later.question), 1)
    monkeypatch.setitem(floors.COSINE_FLOORS, "fake-embed.gguf", near[0][1] - 0.01)
    prepared = client.prepare(later.question, session=result.session_id)
    assert later.sentence.rstrip(".") in prepared.messages[-1]["content"]
    why = " ".join(p for part in prepared.report.brought_in for p in part.passages)
    assert "matched: long, sorrowby, tunnel" in why and "similar: cosine" in why
