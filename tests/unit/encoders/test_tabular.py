"""Tests of the tabular_mlp encoder."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.data.preprocess.text import VocabTextPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, InputSpec
from omnifuse.encoders.tabular import TabularMLPEncoder

COLUMNS = {"age": "numeric", "city": "categorical", "income": "numeric", "pet": "categorical"}
ROWS = [
    {"age": 20, "city": "Paris", "income": 1.0, "pet": "cat"},
    {"age": 30, "city": "Oslo", "income": None, "pet": "dog"},
    {"age": 40, "city": "Rome", "income": 2.0, "pet": None},
]


def pad_and_stack(rows: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Collates per-row tensors: pads dim 0 with zeros to the longest row, then stacks."""
    out = {}
    for key in rows[0]:
        longest = max(r[key].shape[0] for r in rows)
        out[key] = torch.stack(
            [
                torch.cat([r[key], r[key].new_zeros(longest - r[key].shape[0], *r[key].shape[1:])])
                for r in rows
            ]
        )
    return out


def make(
    columns: dict[str, str], rows: list[dict[str, object]], **options: object
) -> tuple[Encoder, TabularPreprocessor]:
    spec = ENCODERS.get("tabular_mlp")
    opts = spec.options(**options)
    prep = spec.make_preprocessor(opts, InputSpec(name="tabular", modality="tabular", columns=columns))
    assert isinstance(prep, TabularPreprocessor)
    prep.fit(rows)
    return spec.build(opts, prep, None), prep


def test_registered() -> None:
    spec = ENCODERS.get("tabular_mlp")
    assert spec.modality == "tabular"
    assert (spec.options().embed_dim, spec.options().hidden_dim) == (16, 64)


def test_shapes_on_a_collated_batch() -> None:
    encoder, prep = make(COLUMNS, ROWS, embed_dim=4, hidden_dim=8)
    out = encoder(pad_and_stack([prep(r) for r in ROWS] + [prep.blank()]))
    assert encoder.output_dim == 8
    assert out.pooled.shape == (4, 8) and torch.isfinite(out.pooled).all()
    assert out.tokens is not None and out.tokens.shape == (4, 4, 8)
    assert out.mask is not None and out.mask.dtype == torch.bool and out.mask.all()


def test_missing_numeric_cell_uses_the_learned_missing_embedding() -> None:
    encoder, prep = make(COLUMNS, ROWS, embed_dim=8, hidden_dim=8)
    assert isinstance(encoder, TabularMLPEncoder) and isinstance(encoder.project, nn.Identity)
    batch = pad_and_stack([prep(ROWS[1])])
    assert batch["numeric_missing"].tolist() == [[0.0, 1.0]]
    batch["numeric"][0, 1] = 123.0  # the value under a missing flag must be ignored
    tokens = encoder(batch).tokens
    assert tokens is not None and encoder.numeric is not None
    assert torch.equal(tokens[0, 1], encoder.numeric.missing[1])
    x = batch["numeric"][0, 0]
    assert torch.allclose(tokens[0, 0], x * encoder.numeric.weight[0] + encoder.numeric.bias[0])


def test_categorical_columns_use_separate_ids() -> None:
    encoder, prep = make(
        {"a": "categorical", "b": "categorical"}, [{"a": "x", "b": "x"}], embed_dim=8, hidden_dim=8
    )
    assert isinstance(encoder, TabularMLPEncoder) and encoder.categorical is not None
    assert encoder.categorical.offsets.tolist() == [0, 3]
    tokens = encoder(pad_and_stack([prep({"a": "x", "b": "x"})])).tokens
    assert tokens is not None and not torch.equal(tokens[0, 0], tokens[0, 1])
    assert "categorical.offsets" not in encoder.state_dict()  # derived from the preprocessor, not saved


def test_backward_reaches_every_parameter() -> None:
    encoder, prep = make(COLUMNS, ROWS, embed_dim=4, hidden_dim=8)
    encoder(pad_and_stack([prep(r) for r in ROWS])).pooled.square().sum().backward()
    missing = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("columns", [{"x": "numeric"}, {"k": "categorical"}])
def test_a_single_column_group(columns: dict[str, str]) -> None:
    rows: list[dict[str, object]] = [{"x": 1.0, "k": "a"}, {"x": 2.0, "k": "b"}]
    encoder, prep = make(columns, rows, embed_dim=4, hidden_dim=6)
    out = encoder(pad_and_stack([prep(r) for r in rows]))
    assert out.pooled.shape == (2, 6) and out.tokens is not None and out.tokens.shape == (2, 1, 6)
    out.pooled.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_build_needs_a_tabular_preprocessor() -> None:
    spec = ENCODERS.get("tabular_mlp")
    with pytest.raises(TypeError, match="expected a TabularPreprocessor, got VocabTextPreprocessor"):
        spec.build(spec.options(), VocabTextPreprocessor(), None)
