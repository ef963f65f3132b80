"""The text of indexed chunks, derived from their extraction (shared by both stores).

The chunk index stores each chunk's place in the extracted text (``start``, ``stop``,
Python ``str`` offsets), never a copy of its text: the text is ``extract[start:stop]``
of the extraction with the same (sha256, extractor version), and of the same owner on
PostgreSQL. The slicing is done here, in Python, rather than with SQL's ``substr``:
SQLite's ``substr`` stops at a NUL character and PostgreSQL stores NUL escaped (see
:mod:`nbchat.core.postgres`), so only Python's offsets are the chunker's offsets for
every text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nbchat.core.errors import StoreError
from nbchat.core.store import ChunkRow, ChunkText

__all__ = ["chunk_slices", "indexes_by_file", "texts_from_extracts"]

# (chunk id, sha256, extractor version, start, stop), as a store reads a chunk's row.
ChunkPlace = tuple[int, str, str, int, int]


def chunk_slices(
    extract: str | None, sha256: str, version: str, chunks: Sequence[ChunkRow]
) -> list[str]:
    """Each chunk's text, sliced from ``extract``: what the word index is fed.

    Refuses chunks whose extraction is not stored (they would be indexed with no text
    to show) and chunks that are not their extraction's slice (an offset bug).
    """
    if extract is None:
        raise StoreError(
            f"Cannot index the chunks of {sha256[:12]} (extractor {version}): its "
            "extracted text is not stored. Store the extraction first, in the same "
            "transaction (Resolver.flush does)."
        )
    texts = [extract[c.start : c.end] for c in chunks]
    for chunk, text in zip(chunks, texts):
        if text != chunk.text:
            raise StoreError(
                f"Chunk {chunk.index} of {sha256[:12]} is not the extracted text at "
                f"[{chunk.start}, {chunk.end}): the chunks were cut from another text."
            )
    return texts


def texts_from_extracts(
    places: Sequence[ChunkPlace], read_extract: Callable[[str, str], str | None]
) -> list[ChunkText]:
    """The chunks' texts, reading each extraction once.

    A chunk without its extraction cannot happen (``put_chunks`` refuses one and the
    migrations drop any older one), so meeting one is an error, not a chunk to skip.
    """
    extracts: dict[tuple[str, str], str | None] = {}
    found: list[ChunkText] = []
    for chunk_id, sha256, version, start, stop in places:
        key = (sha256, version)
        if key not in extracts:
            extracts[key] = read_extract(sha256, version)
        text = extracts[key]
        if text is None:
            raise StoreError(
                f"Chunk {chunk_id} of {sha256[:12]} (extractor {version}) has no stored "
                "extracted text to read it from: the database was changed by hand."
            )
        found.append(ChunkText(chunk_id, text[start:stop]))
    return found


def indexes_by_file(rows: Iterable[Sequence[Any]]) -> dict[str, frozenset[int]]:
    """(sha256, chunk index) rows, as ``sent_chunks`` reads them, grouped per file."""
    found: dict[str, set[int]] = {}
    for sha256, index in rows:
        found.setdefault(str(sha256), set()).add(int(index))
    return {sha: frozenset(indexes) for sha, indexes in found.items()}
