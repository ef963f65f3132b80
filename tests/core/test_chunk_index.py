"""The chunk index stores each chunk's place in the extraction, never its text again:
the text is read from the stored extraction, at Python's offsets, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbchat.core import migrations
from nbchat.core.attachments import Resolver, chunk_rows, path_spec
from nbchat.core.extract import EXTRACTOR_VERSION
from nbchat.core.errors import StoreError
from nbchat.core.extractors.record import Extracted
from nbchat.core.sqlite_store import SqliteStore
from nbchat.core.store import ChunkRow

from needles import needle_document
from old_chunks import put_m004_chunks, sqlite_at_m004, used_bytes
from rawsql import query

SHA = "c0ffee" * 10 + "beef"
VERSION = "test-1"


def marker(n: int) -> str:
    """A word found in paragraph ``n`` only ("kwab" for 1)."""
    return "kw" + "".join(chr(97 + int(d)) for d in f"{n:02d}")


# Every paragraph holds characters whose offsets differ between code points, UTF-16 and
# UTF-8, a NUL (SQLite's substr stops there), PostgreSQL's NUL escape U+FFFF, and then
# its own word: found in the right chunk only if every offset is Python's.
TRICKY = "\n\n".join(
    f"Paragraph {n}: naïve café 😀🎉 𝔘𝔫𝔦 \x00 e\u0301 \uffff then {marker(n)} here. "
    + "Plain filler words follow the marker. " * 12
    for n in range(30)
)


def index(store, sha: str, extracted: Extracted) -> list[ChunkRow]:
    rows = chunk_rows(extracted)
    with store.transaction() as tx:
        store.put_extract(tx, sha, VERSION, extracted)
        store.put_chunks(tx, sha, VERSION, rows)
    return rows


def test_chunk_texts_are_the_extract_sliced_at_python_offsets(store):
    rows = index(store, SHA, Extracted(TRICKY, "text"))
    assert len(rows) > 5
    texts = {c.chunk_id: c.text for c in store.unembedded_chunks("any-model", 1000)}
    assert sorted(texts.values()) == sorted(r.text for r in rows)
    assert any(("😀" in t and "\x00" in t and "\uffff" in t) for t in texts.values())
    for n in (0, 1, 14, 29):  # words after emoji, NUL and U+FFFF are indexed in place
        ranked = store.rank_chunks(SHA, VERSION, [marker(n)], 3)
        assert len(ranked) == 1 and marker(n) in rows[ranked[0][0]].text, n


def test_chunks_without_their_stored_extract_are_refused_and_nothing_is_indexed(store):
    extracted = Extracted(TRICKY, "text")
    with pytest.raises(StoreError, match="extracted text is not stored"):
        with store.transaction() as tx:
            store.put_chunks(tx, SHA, VERSION, chunk_rows(extracted))
    assert not store.has_chunks(SHA, VERSION)
    other = Extracted(TRICKY.replace("😀", "x"), "text")  # the chunks of another text
    with pytest.raises(StoreError, match="not the extracted text"):
        with store.transaction() as tx:
            store.put_extract(tx, SHA, VERSION, other)
            store.put_chunks(tx, SHA, VERSION, chunk_rows(extracted))
    assert not store.has_chunks(SHA, VERSION)
    assert store.rank_chunks(SHA, VERSION, [marker(3)], 3) == []


def test_no_column_holds_a_chunks_text(store):
    document = needle_document()
    rows = index(store, SHA, Extracted(document.text, "text"))
    longest = max((r.text for r in rows), key=len)
    if isinstance(store, SqliteStore):
        tables = [r[0] for r in query(store, "SELECT name FROM sqlite_master WHERE type = "
                                             "'table' AND name NOT LIKE 'file_chunks_fts%'")]
        columns = [(t, r[1]) for t in tables for r in query(store, f"PRAGMA table_info({t})")]
        # The word index is contentless: it gives back no text.
        assert {r[0] for r in query(store, "SELECT text FROM file_chunks_fts")} == {None}
    else:
        columns = query(store, "SELECT table_name, column_name FROM information_schema.columns "
                               "WHERE table_schema = 'nbchat' AND data_type = 'text'")
    assert columns
    holding = [
        (table, column) for table, column in columns
        if query(store, f"SELECT count(*) FROM {table} WHERE {column} = ?", (longest,))[0][0]
    ]
    assert holding == []
    # The chunk rows hold places and labels.
    held = {r[0] for r in query(store, "SELECT label FROM file_chunks WHERE sha256 = ?", (SHA,))}
    assert held == {r.label for r in rows}


def test_without_fts5_the_chunks_rank_by_terms_held_read_from_the_extract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(migrations, "_has_fts5", lambda db: False)
    with SqliteStore(tmp_path / "no-fts.sqlite") as store:
        assert not query(store, "SELECT 1 FROM sqlite_master WHERE name LIKE '%fts%'")
        rows = index(store, SHA, Extracted(TRICKY, "text"))
        for n in (0, 14, 29):
            ranked = store.rank_chunks(SHA, VERSION, [marker(n)], 3)
            assert len(ranked) == 1 and marker(n) in rows[ranked[0][0]].text, n
        both = store.rank_chunks(SHA, VERSION, [marker(1), marker(2), "paragraph"], 40)
        # The chunk holding two of the terms comes first, then the others by index.
        assert both[0][1] > both[-1][1] and len(both) == len({r.index for r in rows})
        indexes = [i for i, n in both if n == both[-1][1]]
        assert indexes == sorted(indexes)


def test_a_large_document_costs_its_text_once_on_disk(tmp_path: Path):
    document = needle_document()
    extracted = Extracted(document.text, "text")
    rows = chunk_rows(extracted)
    text_bytes = len(document.text.encode("utf-8"))
    old = sqlite_at_m004(tmp_path / "m004.sqlite")  # the text column of that schema
    put_m004_chunks(old, SHA, VERSION, document.text, rows)
    old.close()
    before = used_bytes(tmp_path / "m004.sqlite")
    with SqliteStore(tmp_path / "now.sqlite") as store:
        index(store, SHA, extracted)
    after = used_bytes(tmp_path / "now.sqlite")
    with SqliteStore(tmp_path / "m004.sqlite") as upgraded:  # m005 drops the column
        assert upgraded.rank_chunks(SHA, VERSION, ["oxhollow"], 1)
    after_upgrade = used_bytes(tmp_path / "m004.sqlite")
    print(f"{text_bytes:,} bytes of text: m004 {before:,}, now {after:,}, "
          f"upgraded {after_upgrade:,} bytes in use")
    assert before - after >= 0.8 * text_bytes
    assert before - after_upgrade >= 0.8 * text_bytes


def test_the_extraction_is_stored_with_its_chunks_whichever_cache_it_came_from(store, tmp_path):
    """A resolver without a store takes a file's extraction from the process's memory
    (a dry run left it there) and never holds it as a new cache entry: flushing it into
    a store must still store the extraction the chunks point into."""
    path = tmp_path / "report.txt"
    path.write_text(needle_document(60_000).text, encoding="utf-8")
    first = Resolver(None)
    first.resolve(path_spec(str(path)))
    first.remember()  # what a dry run does
    resolver = Resolver(None)
    sha = resolver.resolve(path_spec(str(path))).sha256
    with store.transaction() as tx:
        resolver.flush(store, tx)
    extract = store.cached_extract(sha, EXTRACTOR_VERSION)
    assert extract is not None and store.has_chunks(sha, EXTRACTOR_VERSION)
    texts = [c.text for c in store.unembedded_chunks("any-model", 1000)]
    assert len(texts) > 10 and all(t in extract.text for t in texts)
