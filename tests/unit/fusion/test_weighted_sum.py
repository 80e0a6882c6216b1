"""Unit tests of the weighted_sum fusion."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.weighted_sum import WeightedSumFusion, WeightedSumOptions, build_weighted_sum


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _fixed_fusion() -> WeightedSumFusion:
    """a (2 wide) projected by identity, b (1 wide) by [1, 2]; softmax weights 1/4, 3/4."""
    fusion = build_weighted_sum(WeightedSumOptions(dim=2), {"a": 2, "b": 1})
    proj_a, proj_b = fusion.proj
    assert isinstance(proj_a, nn.Linear) and isinstance(proj_b, nn.Linear)
    with torch.no_grad():
        proj_a.weight.copy_(torch.eye(2))
        proj_b.weight.copy_(torch.tensor([[1.0], [2.0]]))
        proj_a.bias.zero_()
        proj_b.bias.zero_()
        fusion.logits.copy_(torch.tensor([0.0, math.log(3.0)]))
    return fusion


def _inputs() -> tuple[dict[str, EncoderOutput], dict[str, torch.Tensor]]:
    feats = {
        "b": EncoderOutput(torch.tensor([[4.0], [9.0], [1.0], [3.0]])),
        "a": EncoderOutput(torch.tensor([[1.0, 2.0], [1.0, 2.0], [9.0, 9.0], [5.0, 5.0]])),
    }
    presence = {"a": torch.tensor([True, True, False, False]), "b": torch.tensor([True, False, True, False])}
    return feats, presence


def test_hand_computed_with_one_absent() -> None:
    fusion = _fixed_fusion()
    out = fusion(*_inputs())
    expected = torch.tensor(
        [
            [0.25 * 1 + 0.75 * 4, 0.25 * 2 + 0.75 * 8],  # both present
            [1.0, 2.0],  # b absent: a alone, weight 1
            [1.0, 2.0],  # a absent: b alone -> [1, 2] * 1
            [0.0, 0.0],  # nothing present
        ]
    )
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(
        fusion.last_weights, torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    )
    assert fusion.last_weights is not None and not fusion.last_weights.requires_grad


def test_starts_with_equal_weights_and_learns_logits() -> None:
    fusion = build_weighted_sum(WeightedSumOptions(dim=3), {"a": 2, "b": 4, "c": 1})
    assert fusion.output_dim == 3
    feats = {n: EncoderOutput(torch.randn(5, d)) for n, d in {"a": 2, "b": 4, "c": 1}.items()}
    presence = {n: torch.ones(5, dtype=torch.bool) for n in feats}
    out = fusion(feats, presence)
    torch.testing.assert_close(fusion.last_weights, torch.full((5, 3), 1 / 3))
    (out * torch.randn_like(out)).sum().backward()
    assert fusion.logits.grad is not None and fusion.logits.grad.abs().sum() > 0


def test_absent_nan_features_stay_out_of_output_and_gradients() -> None:
    fusion = _fixed_fusion()
    feats, presence = _inputs()
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_weighted_sum(WeightedSumOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'weighted_sum' needs at least one input"):
        build_weighted_sum(WeightedSumOptions(), {})
