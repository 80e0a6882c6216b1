"""Text baseline features: TF-IDF word 1-2-grams and character 2-5-grams."""

from __future__ import annotations

import numpy as np
import pytest

from omnifuse.baselines.features.text import TextFeatures


def test_tfidf_learns_word_and_character_vocabularies_on_the_training_texts() -> None:
    features = TextFeatures().fit(["the red cat", "a blue dog", "the red dog"])
    word, char = features.vectorizers
    assert "red cat" in word.vocabulary_ and "red" in word.vocabulary_
    assert " ca" in char.vocabulary_ and "cat " in char.vocabulary_
    matrix = features.transform(["the red cat", "unseen zebra"])
    assert matrix.shape == (2, len(word.vocabulary_) + len(char.vocabulary_))
    row_norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).reshape(-1)
    assert row_norms[0] == pytest.approx(np.sqrt(2.0))  # two L2-normalised parts
    assert features.transform(["the red cat"]).toarray().tolist() == matrix[:1].toarray().tolist()


def test_a_vectorizer_without_terms_is_dropped_and_no_terms_at_all_is_an_error() -> None:
    features = TextFeatures().fit(["a", "b", "c"])  # single letters: no word token, but characters
    assert [v.analyzer for v in features.vectorizers] == ["char_wb"]
    with pytest.raises(ValueError, match=r"no word or character n-gram in the training texts"):
        TextFeatures().fit(["", " ", ""])
