"""TF-IDF of word and character n-grams, as (term id, weight) pairs for the ``tfidf`` encoder.

The same features as the text baseline (``omnifuse.baselines.features.text``), written here in plain Python so
that the fitted state is JSON: terms are word 1..``word_ngrams``-grams (words of two or more letters or
digits, lower-cased) and character ``char_min``..``char_max``-grams of each word padded with a space on each
side; each kind keeps its ``max_terms`` terms found in the most training texts (at least ``min_df``), weighted
by a sublinear term frequency ``1 + ln(count)`` times the smoothed inverse document frequency
``ln((1 + N) / (1 + df)) + 1``, and each kind's part of a row is L2-normalised, then scaled by
``1 / sqrt(kinds)`` so that a row's weights have norm 1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.text import check_text
from omnifuse.errors import DataError, ModelDirError

_TOKEN_RE = re.compile(r"\b\w\w+\b")  # what scikit-learn's TfidfVectorizer calls a word
KINDS = ("word", "char")


def word_terms(text: str, max_n: int) -> list[str]:
    """Word 1..max_n-grams of ``text`` (lower-cased words of two or more characters), in order."""
    words = _TOKEN_RE.findall(text.lower())
    return [" ".join(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)]


def char_terms(text: str, low: int, high: int) -> list[str]:
    """Character low..high-grams of each word padded with spaces (scikit-learn's ``char_wb``), in order."""
    terms = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(low, high + 1):
            terms += [padded[i : i + n] for i in range(len(padded) - n + 1)]
            if n >= len(padded):
                break
    return terms


class TfidfPreprocessor(Preprocessor):
    """One text -> the ids and TF-IDF weights of its known terms (id 0: padding, weight 0).

    Args:
        word_ngrams: the longest word n-gram (0: no word terms).
        char_ngrams: (shortest, longest) character n-gram within words ((0, 0): no character terms).
        max_terms: terms kept per kind, those in the most training texts (ties: alphabetical).
        min_df: a term must occur in at least this many training texts.
    """

    def __init__(self, word_ngrams: int = 2, char_ngrams: tuple[int, int] = (2, 5), max_terms: int = 20000,
                 min_df: int = 2) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        self.max_terms = max_terms
        self.min_df = min_df
        self.terms: dict[str, list[str]] = {}  # kind -> its terms; ids count from 1 over the kinds in order
        self.idf: dict[str, list[float]] = {}
        self._index: dict[str, dict[str, int]] = {}  # kind -> {term: its position in terms[kind]}
        self._offset: dict[str, int] = {}  # kind -> the id of its first term

    def _kinds(self) -> list[str]:
        wanted = {"word": self.word_ngrams > 0, "char": self.char_ngrams[1] > 0}
        return [kind for kind in KINDS if wanted[kind]]

    def _terms_of(self, kind: str, text: str) -> list[str]:
        if kind == "word":
            return word_terms(text, self.word_ngrams)
        return char_terms(text, *self.char_ngrams)

    def fit(self, values: Sequence[Any]) -> None:
        """Keeps each kind's most frequent terms and their inverse document frequencies.

        Raises:
            DataError: no term of any kind occurs in ``min_df`` training texts.
        """
        texts = [check_text(v) for v in values]
        terms: dict[str, list[str]] = {}
        idf: dict[str, list[float]] = {}
        for kind in self._kinds():
            df = Counter(term for text in texts for term in set(self._terms_of(kind, text)))
            ranked = sorted((t for t, n in df.items() if n >= self.min_df), key=lambda t: (-df[t], t))
            kept = ranked[: self.max_terms]
            if kept:
                terms[kind] = kept
                idf[kind] = [math.log((1 + len(texts)) / (1 + df[t])) + 1.0 for t in kept]
        if not terms:
            raise DataError(
                f"the tfidf encoder found no word or character n-gram in {self.min_df} or more of the "
                f"{len(texts)} training texts; lower its min_df, or use another text encoder"
            )
        self._set(terms, idf)

    def _set(self, terms: dict[str, list[str]], idf: dict[str, list[float]]) -> None:
        self.terms, self.idf, self._index, self._offset, start = terms, idf, {}, {}, 1
        for kind, kept in terms.items():
            self._index[kind] = {term: i for i, term in enumerate(kept)}
            self._offset[kind] = start
            start += len(kept)

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding included."""
        return 1 + sum(len(t) for t in self.terms.values())

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """``input_ids`` (T,) long, ``weights`` (T,) float and ``attention_mask`` (T,) of one text's terms.

        Raises:
            RuntimeError: neither fitted nor loaded. BadValueError: ``value`` is not a string.
        """
        if not self.terms:
            raise RuntimeError("TfidfPreprocessor is not fitted; call fit(training texts) or load_state_dict")
        text = check_text(value)
        ids: list[int] = []
        weights: list[float] = []
        for kind, index in self._index.items():
            counts = Counter(index[t] for t in self._terms_of(kind, text) if t in index)  # position -> count
            if not counts:
                continue
            idf, offset = self.idf[kind], self._offset[kind]
            part = sorted((pos, (1.0 + math.log(c)) * idf[pos]) for pos, c in counts.items())
            norm = math.sqrt(sum(w * w for _, w in part) * len(self._index))
            ids += [offset + pos for pos, _ in part]
            weights += [w / norm for _, w in part]
        return _pairs(ids, weights)

    def blank(self) -> dict[str, Tensor]:
        """One padding term of weight 0."""
        return _pairs([], [])

    def state_dict(self) -> dict[str, Any]:
        """Options, the kept terms and their inverse document frequencies (JSON-able)."""
        return {"word_ngrams": self.word_ngrams, "char_ngrams": list(self.char_ngrams),
                "max_terms": self.max_terms, "min_df": self.min_df, "terms": self.terms, "idf": self.idf}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what ``state_dict`` wrote.

        Raises:
            ModelDirError: the terms and their weights do not match.
        """
        terms = {str(k): [str(t) for t in v] for k, v in state["terms"].items()}
        idf = {str(k): [float(x) for x in v] for k, v in state["idf"].items()}
        if set(terms) != set(idf) or any(len(terms[k]) != len(idf[k]) for k in terms) or not terms:
            raise ModelDirError("the tfidf preprocessor's terms and weights in preprocessors.json do not "
                                "match; the file is damaged: retrain, or restore the model folder")
        self.word_ngrams = int(state["word_ngrams"])
        self.char_ngrams = (int(state["char_ngrams"][0]), int(state["char_ngrams"][1]))
        self.max_terms, self.min_df = int(state["max_terms"]), int(state["min_df"])
        self._set(terms, idf)


def _pairs(ids: Iterable[int], weights: Iterable[float]) -> dict[str, Tensor]:
    """The output dict; a text without a known term becomes one padding term of weight 0."""
    id_list, weight_list = list(ids), list(weights)
    if not id_list:
        id_list, weight_list, mask = [0], [0.0], [0]
    else:
        mask = [1] * len(id_list)
    return {"input_ids": torch.tensor(id_list, dtype=torch.long),  # (T,)
            "weights": torch.tensor(weight_list, dtype=torch.float32),  # (T,)
            "attention_mask": torch.tensor(mask, dtype=torch.long)}  # (T,)
