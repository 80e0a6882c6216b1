"""The tfidf encoder: n-gram vectors start near 0, term dropout only in training, clear option errors."""

from __future__ import annotations

import pytest
import torch

from omnifuse.data.preprocess.tfidf import TfidfPreprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.encoders.lexical import (
    INIT_STD,
    TfidfEncoder,
    TfidfOptions,
    build_tfidf,
    make_tfidf_preprocessor,
)
from omnifuse.errors import OptionError

SPEC = InputSpec("note", "text", {"note": "text"})
TEXTS = ["a red boot", "a red bag", "blue boot laces", "a blue bag strap"]


def _batch(pre: TfidfPreprocessor, texts: list[str]) -> dict[str, torch.Tensor]:
    rows = [pre(t) for t in texts]
    width = max(len(r["input_ids"]) for r in rows)
    out: dict[str, torch.Tensor] = {}
    for key in ("input_ids", "weights"):
        padded = [torch.nn.functional.pad(torch.as_tensor(r[key]), (0, width - len(r[key]))) for r in rows]
        out[key] = torch.stack(padded)
    return out


def _fitted(options: TfidfOptions) -> TfidfPreprocessor:
    pre = make_tfidf_preprocessor(options, SPEC)
    assert isinstance(pre, TfidfPreprocessor)
    pre.fit(TEXTS)
    return pre


def test_vectors_start_near_zero_and_padding_is_zero() -> None:
    encoder = TfidfEncoder(vocab_size=5000, embed_dim=64)
    weight = encoder.embed.weight.detach()
    assert torch.all(weight[0] == 0)
    assert weight[1:].std().item() == pytest.approx(INIT_STD, rel=0.05)


def test_term_dropout_drops_terms_in_training_only() -> None:
    options = TfidfOptions(embed_dim=8, min_df=1, term_dropout=0.5, dropout=0.0)
    pre = _fitted(options)
    encoder = build_tfidf(options, pre, SPEC)
    batch = _batch(pre, TEXTS)
    encoder.eval()
    first, again = encoder(batch).pooled, encoder(batch).pooled  # (B, E) each
    assert torch.equal(first, again)
    encoder.train()
    torch.manual_seed(0)
    dropped = encoder(batch).pooled
    assert not torch.allclose(dropped, first)
    # kept terms are scaled by 1 / (1 - p): over many draws the mean matches the evaluation output
    torch.manual_seed(1)
    mean = torch.stack([encoder(batch).pooled for _ in range(4000)]).mean(dim=0)
    assert torch.allclose(mean, first, atol=3e-3)


def test_no_term_kind_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="word_ngrams and char_max are both 0"):
        make_tfidf_preprocessor(TfidfOptions(word_ngrams=0, char_max=0), SPEC)
    with pytest.raises(OptionError, match="char_min: 6 is above char_max 5"):
        make_tfidf_preprocessor(TfidfOptions(char_min=6, char_max=5), SPEC)


def test_linear_features_are_each_rows_tfidf_vector() -> None:
    options = TfidfOptions(embed_dim=8, min_df=1)
    pre = _fitted(options)
    encoder = build_tfidf(options, pre, SPEC)
    batch = _batch(pre, TEXTS)
    dense = encoder.linear_features(batch)  # (B, V)
    assert encoder.linear_sparse and dense.shape == (4, encoder.linear_dim)
    for row in range(4):
        ids, weights = batch["input_ids"][row], batch["weights"][row]
        real = ids > 0
        assert torch.allclose(dense[row, ids[real]], weights[real])
        assert float(dense[row].sum()) == pytest.approx(float(weights.sum()), abs=1e-5)
