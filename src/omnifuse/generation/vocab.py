"""The word vocabulary ``tiny_decoder`` writes with: words and punctuation, fitted on the training targets."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omnifuse.generation.tokenizer import SpecialIds

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}'])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def words(text: str) -> list[str]:
    """``"A handwritten 3; the voice"`` -> ``["A", "handwritten", "3", ";", "the", "voice"]``."""
    return _TOKEN.findall(text)


@dataclass
class WordVocab:
    """Token ids of words; 0-3 are the pad, unknown, begin and end tokens."""

    tokens: list[str] = field(default_factory=lambda: list(SPECIALS))
    special = SpecialIds(BOS_ID, EOS_ID, PAD_ID)  # class constant, not a field

    def fit(self, texts: Sequence[str], min_count: int = 1) -> None:
        """Every word seen at least ``min_count`` times, most frequent first (ties alphabetically)."""
        counts = Counter(word for text in texts for word in words(text))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        self.tokens = [*SPECIALS, *kept]
        self._index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s words (unknown ones as UNK_ID), without begin or end tokens."""
        index = self._lookup()
        return [index.get(word, UNK_ID) for word in words(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` up to the first end token; pad and begin tokens are left out."""
        out: list[str] = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID) and 0 <= i < len(self.tokens):
                out.append(self.tokens[i])
        text = _NO_SPACE_BEFORE.sub(r"\1", " ".join(out))
        return _NO_SPACE_AFTER.sub(r"\1", text)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (the token list)."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WordVocab:
        """Rebuilds a vocabulary from ``state_dict`` output."""
        return cls(list(state["tokens"]))

    def _lookup(self) -> dict[str, int]:
        if getattr(self, "_index", None) is None or len(self._index) != len(self.tokens):
            self._index = {token: i for i, token in enumerate(self.tokens)}
        return self._index
