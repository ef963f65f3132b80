"""A large file's chunks and their words, split once per kernel (nbchat/core/chunk_words.py).

The passages chosen must not change: the table-based common-word filter, BM25 and
matched words are checked against the functions they replaced (kept here, frozen, as
they were), on generated texts of several languages and word shapes and on a real
PDF's extraction."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from nbchat.core.chunk_words import ChunkWordsCache, chunk_words
from nbchat.core.chunks import Chunk, chunk_text
from nbchat.core.extract import extract_bytes
from nbchat.core.passages import (
    COMMON_MIN_CHUNKS,
    COMMON_SHARE,
    _bm25,
    informative_terms,
    rank_chunks,
)
from nbchat.core.ranking import words

from filegen import make_text_pdf


# -- the functions the table replaced, as they were ----------------------------------


def old_matched_terms(text: str, terms: Sequence[str]) -> list[str]:
    present = set(words(text))
    return [t for t in terms if t in present or t + "s" in present]


def old_informative_terms(text: str, chunks: Sequence[Chunk], terms: Sequence[str]) -> list[str]:
    if len(chunks) < COMMON_MIN_CHUNKS or not terms:
        return list(terms)
    holding = Counter(
        term for chunk in chunks for term in old_matched_terms(text[chunk.start : chunk.end], terms)
    )
    return [t for t in terms if holding[t] <= COMMON_SHARE * len(chunks)]


def old_bm25(text: str, chunks: Sequence[Chunk], terms: Sequence[str]) -> list[tuple[int, float]]:
    bags = [Counter(words(text[c.start : c.end])) for c in chunks]
    lengths = [sum(bag.values()) for bag in bags]
    average = sum(lengths) / max(1, len(lengths))
    count = len(chunks)
    scores: dict[int, float] = {}
    for term in terms:
        holding = [i for i, bag in enumerate(bags) if bag.get(term)]
        if not holding:
            continue
        idf = max(1e-6, math.log((count - len(holding) + 0.5) / (len(holding) + 0.5)))
        for i in holding:
            tf = bags[i][term]
            norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[i] / max(1.0, average)))
            scores[i] = scores.get(i, 0.0) + idf * norm
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


# -- generated texts -------------------------------------------------------------------

VOCABULARIES = {
    "english": "report reports plan plans bridge bridges tunnel metre metres the a of and "
               "committee committees survey data year years cost costs it's don't o'neill",
    "german": "Die Stetigkeit ist ein Begriff der Vorlesung Überdeckung Überdeckungen "
              "Mannigfaltigkeit Räume Raum Hausdorff-Raum straße Straßen groß",
    "french": "l'homme l’homme les hommes aujourd'hui château châteaux élève élèves été "
              "déjà où ça naïve",
    "russian": "отчёт отчёты мост мосты план планы данные год года Москва",
    "greek": "γέφυρα γέφυρες σχέδιο σχέδια έτος",
    "cjk": "東京都 報告書 計画 データ 橋 トンネル 数据 报告",
    "shapes": "snake_case CamelCase x86_64 v2 3.14 2024-05-01 1,000 e-mail n° 42nd "
              "A B I's isn't R2D2 co-operate ａｂｃ",
}


def generated_text(seed: int, vocabulary: Sequence[str], paragraphs: int = 80) -> str:
    rng = random.Random(seed)
    text = []
    for _ in range(paragraphs):
        sentences = [" ".join(rng.choices(vocabulary, k=rng.randint(4, 18))) + "."
                     for _ in range(rng.randint(1, 8))]
        text.append(" ".join(sentences))
    return "\n\n".join(text)


def query_words(text: str, seed: int) -> list[str]:
    """Words to ask: some of the text's, their singulars and plurals, and absent ones."""
    rng = random.Random(seed)
    present = sorted(set(words(text)))
    asked = rng.sample(present, min(12, len(present)))
    asked += [w.removesuffix("s") for w in asked if w.endswith("s")]
    asked += [w + "s" for w in asked[:4]]
    asked += ["zzqx", "the", "a", "s", "ist"]
    return list(dict.fromkeys(asked))


def texts() -> dict[str, str]:
    found = {
        name: generated_text(seed, vocabulary.split())
        for seed, (name, vocabulary) in enumerate(VOCABULARIES.items())
    }
    found["mixed"] = generated_text(99, " ".join(VOCABULARIES.values()).split(), 200)
    found["short"] = "One plan, two plans. Das ist ein Raum."
    return found


TEXTS = texts()


def assert_same_as_before(text: str, sections: tuple, terms: list[str]) -> None:
    chunks = chunk_text(text, sections)
    table = chunk_words(text, sections)
    assert table.chunks == chunks and table.text_chars == len(text)
    assert informative_terms(table, terms) == old_informative_terms(text, chunks, terms)
    assert _bm25(table, terms) == old_bm25(text, chunks, terms)  # same scores, same order
    for index, chunk in enumerate(chunks):
        assert table.matched(index, terms) == old_matched_terms(text[chunk.start : chunk.end], terms)
    # Without the store's index, a ranking is this BM25.
    ranked = rank_chunks(None, "sha", "v", table, terms)
    assert list(ranked.order) == old_bm25(text, chunks, terms)[:200]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_the_table_gives_what_splitting_each_chunk_gave(name):
    text = TEXTS[name]
    for seed in range(4):
        assert_same_as_before(text, (), query_words(text, seed))


def test_a_word_in_most_chunks_is_dropped_as_before():
    text = generated_text(3, "plan ist ein Raum Raums tunnel".split(), 120)
    terms = ["ist", "ein", "raum", "tunnel", "plan", "hausdorff"]
    table = chunk_words(text)
    assert len(table.chunks) >= COMMON_MIN_CHUNKS
    kept = informative_terms(table, terms)
    assert kept == old_informative_terms(text, table.chunks, terms)
    assert kept != terms  # the case is one where the filter drops words


def test_a_pdfs_pages_give_the_same_words_as_before(tmp_path):
    pages = [
        f"Chapter {n}. " + "The committee met and reviewed the plans. " * 30
        + ("The Sorrowby tunnel is 4,870 metres long. " if n == 17 else "")
        for n in range(1, 31)
    ]
    path = make_text_pdf(tmp_path, "report.pdf", pages)
    extracted = extract_bytes(path.read_bytes(), path.name)
    assert extracted.sections and extracted.sections[0].unit == "page"
    table = chunk_words(extracted.text, extracted.sections)
    assert {c.unit for c in table.chunks} == {"page"}
    for seed in range(3):
        terms = query_words(extracted.text, seed) + ["sorrowby", "tunnels", "page", "metre"]
        assert_same_as_before(extracted.text, extracted.sections, terms)
    best = _bm25(table, ["sorrowby"])
    assert [table.chunks[i].first for i, _ in best] == [17]


# -- the cache -------------------------------------------------------------------------


def test_a_kept_table_is_the_same_one_and_is_built_once():
    cache = ChunkWordsCache()
    text = generated_text(1, VOCABULARIES["english"].split())
    first = cache.table("a" * 64, "v1", text)
    assert cache.table("a" * 64, "v1", text) is first
    assert cache.builds == 1 and len(cache) == 1


def test_another_content_or_extractor_version_gives_another_table():
    cache = ChunkWordsCache()
    text = generated_text(1, VOCABULARIES["english"].split())
    other = generated_text(2, VOCABULARIES["german"].split())
    first = cache.table("a" * 64, "v1", text)
    newer = cache.table("a" * 64, "v2", other)
    another = cache.table("b" * 64, "v1", other)
    assert cache.builds == 3 and len(cache) == 3
    assert newer is not first and another is not first and another is not newer
    assert newer.chunks == chunk_text(other) and first.chunks == chunk_text(text)


def test_the_least_recently_used_table_goes_first_past_the_bound():
    texts = {name: "word " * 2000 + name for name in ("one", "two", "three")}  # 10,00x chars
    cache = ChunkWordsCache(limit_chars=25_000)
    cache.table("one", "v", texts["one"])
    cache.table("two", "v", texts["two"])
    cache.table("one", "v", texts["one"])  # used again: "two" is now the oldest
    cache.table("three", "v", texts["three"])
    assert ("two", "v") not in cache
    assert ("one", "v") in cache and ("three", "v") in cache
    assert cache.builds == 3
    cache.table("two", "v", texts["two"])  # built again once evicted
    assert cache.builds == 4 and ("one", "v") not in cache


def test_a_table_larger_than_the_bound_is_kept_alone():
    cache = ChunkWordsCache(limit_chars=100)
    cache.table("small", "v", "a few words")
    big = cache.table("big", "v", "many words here " * 50)
    assert len(cache) == 1 and ("big", "v") in cache
    assert cache.table("big", "v", "many words here " * 50) is big
