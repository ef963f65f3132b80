"""The memory: past messages embedded in the background, searched, and recalled.

- :mod:`~nbchat.memory.embed`: the ``/v1/embeddings`` client and the background worker;
- :mod:`~nbchat.memory.search`: hybrid search (FTS5 BM25 + cosine, fused by rank);
- :mod:`~nbchat.memory.floors`: each embedding model's cosine floor for recall;
- :mod:`~nbchat.memory.planner`: decides before a turn whether to recall, builds the block;
- :mod:`~nbchat.memory.service`: one :class:`Memory` per client, tying them together.

Names are loaded on first use, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Memory",
    "memory_for",
    "remember_turn",
    "close_memory",
    "Hit",
    "SearchFilter",
    "EmbeddingClient",
    "EmbeddingError",
    "Embedder",
]

_HOMES = {
    "Memory": "service",
    "memory_for": "service",
    "remember_turn": "service",
    "close_memory": "service",
    "Hit": "search",
    "SearchFilter": "search",
    "EmbeddingClient": "embed",
    "EmbeddingError": "embed",
    "Embedder": "embed",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nbchat.memory' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"nbchat.memory.{home}"), name)
