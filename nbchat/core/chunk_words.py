"""A large file's chunks and the words each one holds, split once per kernel.

Choosing passages (:mod:`nbchat.core.passages`) asks, on every turn and for every large
file of the conversation, which chunks hold which question words: to drop the words
most chunks hold, to rank the chunks by BM25 when the store has no index for the file
yet, and to say why a chunk was chosen. Splitting a 250,000-character file into words
takes tens of milliseconds, paid before the request; a :class:`ChunkWords` table pays
it once, and a kernel keeps the tables of its recent files in a :class:`ChunkWordsCache`
(the :class:`~nbchat.client.ChatClient` holds one and hands it to each turn).

A table is derived, in-memory state: a pure function of the extracted text and its
sections, so (sha256 of the content, extractor version) names it, as it names the
extraction and the store's chunk index. Nothing of it is stored.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nbchat.core.chunks import Chunk, chunk_text
from nbchat.core.extractors.record import Section
from nbchat.core.ranking import words

__all__ = ["ChunkWords", "ChunkWordsCache", "chunk_words", "TABLE_LIMIT_CHARS"]

#: The cache's bound, in characters of the files its tables describe. A table takes
#: about 6-9 bytes of memory per character of text (measured on prose of 1,000 and
#: 20,000 distinct words), so 8 million characters (about 32 files of 250,000
#: characters, or a few 1,000-page books) hold at most ~70 MB.
TABLE_LIMIT_CHARS = 8_000_000


@dataclass(frozen=True, eq=False)
class ChunkWords:
    """A file's chunks, and per chunk the count of each word it holds (the bag that
    :func:`~nbchat.core.ranking.words` gives) and its number of words; ``text_chars``
    is the extraction's length (what the cache's bound counts)."""

    chunks: tuple[Chunk, ...]
    bags: tuple[Mapping[str, int], ...]
    lengths: tuple[int, ...]
    text_chars: int

    def matched(self, index: int, terms: Sequence[str]) -> list[str]:
        """The ``terms`` that chunk ``index`` holds as whole words (a plural "s" allowed)."""
        bag = self.bags[index]
        return [t for t in terms if t in bag or t + "s" in bag]


def chunk_words(text: str, sections: Sequence[Section] = ()) -> ChunkWords:
    """The table of ``text``: its chunks (:func:`~nbchat.core.chunks.chunk_text`) and
    the words of each."""
    chunks = chunk_text(text, sections)
    bags = tuple(dict(Counter(words(text[c.start : c.end]))) for c in chunks)
    return ChunkWords(chunks, bags, tuple(sum(bag.values()) for bag in bags), len(text))


class ChunkWordsCache:
    """The tables of a kernel's recent files, by (sha256, extractor version).

    Least recently used tables go first once the files they describe pass
    ``limit_chars`` characters in all; the newest stays whatever its size. ``builds``
    counts the tables made, so a caller (or a test) can see that a file was split once.
    Safe to share between threads (the chat panel's and the cells').
    """

    def __init__(self, limit_chars: int = TABLE_LIMIT_CHARS) -> None:
        self.limit_chars = limit_chars
        self.builds = 0
        self._tables: OrderedDict[tuple[str, str], ChunkWords] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def table(
        self, sha256: str, version: str, text: str, sections: Sequence[Section] = ()
    ) -> ChunkWords:
        """The table of the extraction ``text`` of content ``sha256`` by extractor
        ``version``: the kept one, else built now and kept."""
        key = (sha256, version)
        with self._lock:
            found = self._tables.get(key)
            if found is not None:
                self._tables.move_to_end(key)
                return found
            built = chunk_words(text, sections)
            self.builds += 1
            self._tables[key] = built
            self._chars += built.text_chars
            while self._chars > self.limit_chars and len(self._tables) > 1:
                _, oldest = self._tables.popitem(last=False)
                self._chars -= oldest.text_chars
            return built

    def __contains__(self, key: object) -> bool:
        return key in self._tables

    def __len__(self) -> int:
        return len(self._tables)
