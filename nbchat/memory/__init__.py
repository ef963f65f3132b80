"""The memory: past messages embedded in the background, searched, and recalled.

- :mod:`~nbchat.memory.embed`: the ``/v1/embeddings`` client and the background worker;
- :mod:`~nbchat.memory.floors`: each embedding model's cosine floor for recall;
- :mod:`~nbchat.memory.planner`: decides before a turn whether to recall, builds the block;
- :mod:`~nbchat.memory.service`: one :class:`Memory` per client (``client.memory``).

The search itself is a store method (:meth:`nbchat.core.store.Store.search`); this
package imports only :mod:`nbchat.core`, and the client runs its decisions.

Names are loaded on first use, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Memory",
    "Hit",
    "SearchFilter",
    "EmbeddingClient",
    "EmbeddingError",
    "Embedder",
]

_HOMES = {
    "Memory": "service",
    "Hit": "store",
    "SearchFilter": "store",
    "EmbeddingClient": "embed",
    "EmbeddingError": "embed",
    "Embedder": "embed",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nbchat.memory' has no attribute {name!r}")
    import importlib

    package = "nbchat.core" if home == "store" else "nbchat.memory"
    return getattr(importlib.import_module(f"{package}.{home}"), name)
