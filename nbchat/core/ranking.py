"""Ranking past messages: the topic words of a query, and reciprocal-rank fusion.

Pure functions, shared by every store's search (see :meth:`nbchat.core.store.Store.search`)
and by the ``%chat recall`` listing: words and meaning each rank the messages, and
:func:`fuse` merges the two lists, each contributing ``1 / (RRF_K + rank)``, so a message
found by both comes first and either alone still counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RRF_K", "STOPWORDS", "Fused", "query_terms", "words", "fuse"]

RRF_K = 60
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

# Words that carry no topic: left out of the word query (the vector query keeps them).
STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves s t don ll re ve
    d m o y ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan
    shouldn wasn weren won wouldn please tell let know think want like get got say said
    """.split()
)


def words(text: str) -> list[str]:
    """Every word of ``text``, lower-case, in order (what the query terms are matched on)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def query_terms(text: str) -> list[str]:
    """The topic words of ``text``, lower-case, without stopwords, in order, once each."""
    kept = [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(dict.fromkeys(kept))


@dataclass(frozen=True)
class Fused:
    """One message's place after fusion: its score and its rank in each list (1-based)."""

    message_id: int
    score: float
    lexical_rank: int | None
    vector_rank: int | None
    similarity: float | None


def fuse(
    lexical: Sequence[tuple[int, float]], vector: Sequence[tuple[int, float]]
) -> list[Fused]:
    """Both rankings (``(message id, score)``, best first) fused, best first.

    Ties go to the newer message (the higher id).
    """
    scores: dict[int, float] = {}
    lexical_ranks: dict[int, int] = {}
    vector_ranks: dict[int, tuple[int, float]] = {}
    for rank, (message_id, _) in enumerate(lexical, start=1):
        scores[message_id] = scores.get(message_id, 0.0) + 1.0 / (RRF_K + rank)
        lexical_ranks[message_id] = rank
    for rank, (message_id, similarity) in enumerate(vector, start=1):
        scores[message_id] = scores.get(message_id, 0.0) + 1.0 / (RRF_K + rank)
        vector_ranks[message_id] = (rank, similarity)
    ordered = sorted(scores, key=lambda i: (-scores[i], -i))
    fused = []
    for message_id in ordered:
        rank_sim = vector_ranks.get(message_id)
        fused.append(
            Fused(
                message_id,
                scores[message_id],
                lexical_ranks.get(message_id),
                rank_sim[0] if rank_sim else None,
                rank_sim[1] if rank_sim else None,
            )
        )
    return fused
