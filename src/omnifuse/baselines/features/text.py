"""Text features: TF-IDF of word 1-2-grams and of character 2-5-grams (within word boundaries).

Both vocabularies are learnt on the training rows (at most ``MAX_FEATURES`` terms each, the most frequent),
with sublinear term frequencies; each row's two parts are L2-normalised, so the result is a sparse matrix
whose rows have norm sqrt(2) (or less, for a text with no known term).
"""

from __future__ import annotations

from collections.abc import Sequence

import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

MAX_FEATURES = 50_000  # per vectorizer


class TextFeatures:
    """Fitted TF-IDF vectorizers: ``fit(texts)`` then ``transform(texts) -> (N, V) sparse``."""

    def __init__(self, max_features: int = MAX_FEATURES) -> None:
        self.vectorizers = [
            TfidfVectorizer(analyzer=kind, ngram_range=ngrams, sublinear_tf=True, max_features=max_features)
            for kind, ngrams in (("word", (1, 2)), ("char_wb", (2, 5)))
        ]

    def fit(self, texts: Sequence[str]) -> TextFeatures:
        """Learns the vocabularies and the inverse document frequencies of the training texts.

        A vectorizer that finds no term (e.g. only one-letter words for the word n-grams) is dropped.

        Raises:
            ValueError: neither vectorizer finds a term (every text is empty or punctuation).
        """
        kept = []
        for vectorizer in self.vectorizers:
            try:
                vectorizer.fit(texts)
            except ValueError:  # "empty vocabulary"
                continue
            kept.append(vectorizer)
        if not kept:
            raise ValueError("no word or character n-gram in the training texts")
        self.vectorizers = kept
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(N, V) sparse TF-IDF rows, the word part then the character part."""
        return sp.hstack([v.transform(texts) for v in self.vectorizers], format="csr")
