"""The TF-IDF preprocessor: terms, weights that match scikit-learn, padding, state round trip, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from omnifuse.data.preprocess.tfidf import TfidfPreprocessor, char_terms, word_terms
from omnifuse.errors import BadValueError, DataError, ModelDirError

TEXTS = ["the cat sat on the mat", "a dog sat", "the dog and the cat", "cats and dogs"]


def test_word_and_char_terms() -> None:
    assert word_terms("The cat, a cat!", 2) == ["the", "cat", "cat", "the cat", "cat cat"]
    assert char_terms("Hi", 2, 3) == [" h", "hi", "i ", " hi", "hi "]


def test_word_weights_match_scikit_learn() -> None:
    pre = TfidfPreprocessor(word_ngrams=2, char_ngrams=(0, 0), min_df=1)
    pre.fit(TEXTS)
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(TEXTS)
    row = pre("the cat sat on the mat")
    pairs = zip(row["input_ids"], row["weights"], strict=True)
    ours = {pre.terms["word"][int(i) - 1]: float(w) for i, w in pairs}
    dense = reference.transform(["the cat sat on the mat"]).toarray()[0]
    theirs = {t: dense[j] for t, j in reference.vocabulary_.items() if dense[j] > 0}
    assert ours.keys() == theirs.keys()
    for term, weight in ours.items():
        assert weight == pytest.approx(theirs[term], rel=1e-6)


def test_rows_have_unit_norm_over_both_kinds_and_ids_are_sorted() -> None:
    pre = TfidfPreprocessor(min_df=1)
    pre.fit(TEXTS)
    row = pre("the dog sat")
    assert torch.linalg.norm(row["weights"]).item() == pytest.approx(1.0, rel=1e-6)
    ids = row["input_ids"].tolist()
    assert ids == sorted(ids) and min(ids) >= 1 and max(ids) < pre.vocab_size
    assert row["attention_mask"].tolist() == [1] * len(ids)


def test_min_df_and_max_terms_keep_the_most_common_terms() -> None:
    texts = ["the cat", "the dog", "the cow", "one cow", "one hen"]  # the: 3 texts; cow, one: 2; the rest 1
    pre = TfidfPreprocessor(word_ngrams=1, char_ngrams=(0, 0), min_df=2, max_terms=2)
    pre.fit(texts)
    assert pre.terms["word"] == ["the", "cow"]  # by document frequency, ties alphabetical
    assert pre.vocab_size == 3
    pre = TfidfPreprocessor(word_ngrams=1, char_ngrams=(0, 0), min_df=2)
    pre.fit(texts)
    assert pre.terms["word"] == ["the", "cow", "one"]


def test_unknown_text_and_blank_are_one_padding_term() -> None:
    pre = TfidfPreprocessor(word_ngrams=1, char_ngrams=(0, 0), min_df=1)
    pre.fit(TEXTS)
    for row in (pre("zebra"), pre.blank()):
        assert row["input_ids"].tolist() == [0] and row["weights"].tolist() == [0.0]
        assert row["attention_mask"].tolist() == [0]


def test_state_round_trip_gives_the_same_rows() -> None:
    pre = TfidfPreprocessor(min_df=1)
    pre.fit(TEXTS)
    other = TfidfPreprocessor()
    other.load_state_dict(pre.state_dict())
    for text in TEXTS:
        a, b = pre(text), other(text)
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.allclose(a["weights"], b["weights"])


def test_errors_say_what_to_do() -> None:
    with pytest.raises(DataError, match="lower its min_df"):
        TfidfPreprocessor(min_df=5).fit(TEXTS)
    with pytest.raises(RuntimeError, match="not fitted"):
        TfidfPreprocessor()("text")
    pre = TfidfPreprocessor(min_df=1)
    pre.fit(TEXTS)
    with pytest.raises(BadValueError, match="expected text"):
        pre(3.5)
    state = pre.state_dict()
    state["idf"]["word"] = state["idf"]["word"][:-1]
    with pytest.raises(ModelDirError, match="damaged"):
        TfidfPreprocessor().load_state_dict(state)


def test_idf_is_smoothed_log() -> None:
    pre = TfidfPreprocessor(word_ngrams=1, char_ngrams=(0, 0), min_df=1)
    pre.fit(TEXTS)
    the = pre.terms["word"].index("the")
    assert pre.idf["word"][the] == pytest.approx(math.log(5 / 3) + 1)
    assert np.isfinite(pre.idf["word"]).all()
