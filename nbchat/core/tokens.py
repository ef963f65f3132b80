"""Token counting: an offline estimate, and a cache in front of any exact counter.

The exact counter comes from the backend (llama-server's ``/tokenize``). Counts are
cached per (sha256 of the text, tokenizer id), in memory and, once a turn is stored, in
the database, so a text is never counted twice by the same tokenizer.

Parts of a prompt are counted one by one (for the budgets); a whole prompt is counted
only by a backend that can template it as its server will (:meth:`CachedCounter.
count_prompt`), since the chat template adds tokens between the parts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbchat.core.errors import NbChatError
from nbchat.core.events import Message, TokenCounter

if TYPE_CHECKING:
    from nbchat.core.store import Store, Transaction

__all__ = ["EstimateCounter", "CachedCounter", "sha256_text", "ESTIMATE_ID"]

ESTIMATE_ID = "estimate-v1"

# Words, single digits (many tokenizers split numbers digit by digit) and single other
# characters: a rough stand-in for BPE pieces.
_PIECES = re.compile(r"[A-Za-z]+|[0-9]|\s+|[^\sA-Za-z0-9]")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class EstimateCounter:
    """Counts tokens without a tokenizer: long words count as several pieces.

    Calibrated on English prose and code against SentencePiece/BPE tokenizers of small
    models (within about 15 %); it errs on the high side so budgets are not overrun.
    """

    tokenizer_id = ESTIMATE_ID

    def count(self, text: str) -> int:
        total = 0
        for piece in _PIECES.findall(text):
            if piece[0].isalpha():
                total += 1 + (len(piece) - 1) // 6
            elif piece[0].isspace():
                total += 0 if piece == " " else max(1, len(piece) // 4)
            elif ord(piece[0]) > 0x2FFF:
                total += 1  # CJK and friends: about one token each
            else:
                total += 1
        return total


@dataclass
class CachedCounter:
    """Wraps a counter with a per-(text hash, tokenizer) cache.

    ``store_lookup`` reads counts saved by earlier turns; new counts wait in
    ``pending`` until :meth:`flush` writes them inside the turn's transaction, so a
    turn that fails writes nothing.
    """

    inner: TokenCounter
    store_lookup: "Store | None" = None
    memory: dict[tuple[str, str], int] = field(default_factory=dict)
    pending: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def tokenizer_id(self) -> str:
        return self.inner.tokenizer_id

    @property
    def exact(self) -> bool:
        return self.inner.tokenizer_id != ESTIMATE_ID

    def count(self, text: str) -> int:
        if not text:
            return 0
        if len(text) < 64 and not self.exact:
            return self.inner.count(text)  # hashing costs more than estimating
        key = (sha256_text(text), self.inner.tokenizer_id)
        found = self.memory.get(key)
        if found is not None:
            return found
        if self.store_lookup is not None:
            stored = self.store_lookup.cached_token_count(*key)
            if stored is not None:
                self.memory[key] = stored
                return int(stored)
        try:
            counted = self.inner.count(text)
        except NbChatError:
            # The server's tokenizer went away: estimate from here on.
            self.inner = EstimateCounter()
            return self.count(text)
        self.memory[key] = counted
        self.pending[key] = counted
        return counted

    def count_prompt(self, messages: Sequence[Message]) -> int | None:
        """Tokens of the whole prompt as the server will see it, or None when the backend
        cannot count it (no such counter, or the server did not answer)."""
        count_prompt = getattr(self.inner, "count_prompt", None)
        if count_prompt is None:
            return None
        try:
            return int(count_prompt(messages))
        except NbChatError:
            return None  # the report falls back to the per-part sum, labelled an estimate

    def flush(self, store: "Store", db: "Transaction") -> None:
        """Write the counts made since the last flush (inside ``store``'s transaction ``db``)."""
        for (sha, tokenizer), tokens in self.pending.items():
            store.put_token_count(db, sha, tokenizer, tokens)
        self.pending.clear()


def estimate_tokens(text: str) -> int:
    return EstimateCounter().count(text)


