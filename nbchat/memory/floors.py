"""The cosine floor of each embedding model: below it, meaning alone does not make a hit.

The fused reciprocal-rank score has no absolute scale (the best of four unrelated
messages still ranks first), so relevance is judged on the vector side's cosine, which
depends on the model: small chat models pooled by their mean put every text at a
cosine of 0.6 or more from every other. Each floor below is the cosine just above
every unrelated (query, message) pair of the labelled set ``tests/files/recall_pairs.json``,
measured by ``bench/bench_recall_floor.py`` (its last lines print these entries).

A model missing from the table is not calibrated: its vectors still order the hits
found by words, but add none of their own (:data:`UNCALIBRATED`), until an entry is
measured for it. Keys are the model names vectors are stored under (the served GGUF's
file name), lower-case.
"""

from __future__ import annotations

import math

__all__ = ["COSINE_FLOORS", "UNCALIBRATED", "cosine_floor"]

UNCALIBRATED = math.inf

# python bench/bench_recall_floor.py --model <gemma GGUF> --model <SmolLM2 GGUF>
# (36 queries x 44 messages: 48 related pairs, 1,536 unrelated). For both models the
# related and unrelated cosines overlap widely, so the floor admits few related pairs
# by meaning alone (6% and 2%): recall rests on the word gate, the vectors mostly order.
COSINE_FLOORS: dict[str, float] = {
    "gemma-3-270m-q4_k_m.gguf": 0.92,
    "smollm2-135m-instruct.q4_1.gguf": 0.94,
}


def cosine_floor(model: str) -> float:
    """The least cosine at which ``model``'s vectors alone make a hit (inf: never)."""
    return COSINE_FLOORS.get(model.lower(), UNCALIBRATED)
