"""Unit tests of the concat fusion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.concat import ConcatFusion, ConcatOptions, build_concat


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _inputs() -> tuple[dict[str, EncoderOutput], dict[str, torch.Tensor]]:
    feats = {
        "b": EncoderOutput(torch.tensor([[5.0], [6.0], [7.0], [8.0]])),
        "a": EncoderOutput(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])),
    }
    presence = {"a": torch.tensor([True, False, True, False]), "b": torch.tensor([True, True, False, False])}
    return feats, presence


def test_layout_and_presence_flags() -> None:
    fusion = build_concat(ConcatOptions(), {"b": 1, "a": 2})
    assert fusion.output_dim == 2 + 1 + 2
    out = fusion(*_inputs())
    expected = torch.tensor(
        [
            # a1, a2, b, flag_a, flag_b
            [1.0, 2.0, 5.0, 1.0, 1.0],
            [0.0, 0.0, 6.0, 0.0, 1.0],
            [5.0, 6.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(out, expected)


def test_projection() -> None:
    fusion = build_concat(ConcatOptions(proj_dim=3, activation="identity"), {"a": 2, "b": 1})
    assert fusion.output_dim == 3
    assert isinstance(fusion.proj, nn.Sequential)
    linear = fusion.proj[0]
    assert isinstance(linear, nn.Linear) and linear.in_features == 5
    feats, presence = _inputs()
    raw = ConcatFusion({"a": 2, "b": 1})(feats, presence)
    torch.testing.assert_close(fusion(feats, presence), linear(raw))


def test_absent_nan_features_stay_out_of_output_and_gradients() -> None:
    fusion = build_concat(ConcatOptions(proj_dim=4), {"a": 2, "b": 1})
    feats, presence = _inputs()
    nan_b = feats["b"].pooled.clone()
    nan_b[~presence["b"]] = float("nan")
    feats["b"] = EncoderOutput(nan_b)
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters() if p.grad is not None)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.proj_dim must be >= 0, got -1; use 0 for no projection"):
        build_concat(ConcatOptions(proj_dim=-1), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got 1.5"):
        build_concat(ConcatOptions(proj_dim=4, dropout=1.5), {"a": 2})
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        build_concat(ConcatOptions(proj_dim=4, activation="nope"), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'concat' needs at least one input"):
        build_concat(ConcatOptions(), {})
