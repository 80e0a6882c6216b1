"""Unit tests of the attention fusion."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.attention import AttentionOptions, build_attention


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_inputs(batch: int, dims: dict[str, int]) -> dict[str, EncoderOutput]:
    return {n: EncoderOutput(torch.randn(batch, d)) for n, d in dims.items()}


def test_weights_sum_to_one_over_present_and_zero_on_absent() -> None:
    dims = {"audio": 3, "image": 5, "text": 4}
    fusion = build_attention(AttentionOptions(dim=6, attn_dim=4), dims)
    presence = {
        "audio": torch.tensor([True, True, False, False, True]),
        "image": torch.tensor([True, False, False, False, False]),
        "text": torch.tensor([True, True, True, False, False]),
    }
    out = fusion(_random_inputs(5, dims), presence)
    assert out.shape == (5, 6) and torch.isfinite(out).all()
    weights = fusion.last_weights
    assert weights is not None and weights.shape == (5, 3)
    present = torch.stack([presence[n] for n in sorted(dims)], dim=1)  # (B, M)
    assert (weights[~present] == 0).all()
    assert (weights[present] > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[3], torch.zeros(6))  # nothing present


def test_hand_computed_scores() -> None:
    """Identity projections and score = 2 tanh(h[0]); a's score is 0 and b's is ln 3 -> weights 1/4, 3/4."""
    fusion = build_attention(AttentionOptions(dim=2, attn_dim=1), {"a": 2, "b": 2})
    with torch.no_grad():
        for proj in fusion.proj:
            assert isinstance(proj, nn.Linear)
            proj.weight.copy_(torch.eye(2))
            proj.bias.zero_()
        fusion.score_hidden.weight.copy_(torch.tensor([[1.0, 0.0]]))
        fusion.score_hidden.bias.zero_()
        fusion.score_out.weight.fill_(2.0)
    b0 = math.atanh(math.log(3.0) / 2)
    feats = {"a": EncoderOutput(torch.tensor([[0.0, 4.0]])), "b": EncoderOutput(torch.tensor([[b0, 8.0]]))}
    out = fusion(feats, {"a": torch.tensor([True]), "b": torch.tensor([True])})
    torch.testing.assert_close(fusion.last_weights, torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(out, torch.tensor([[0.75 * b0, 0.25 * 4 + 0.75 * 8]]))


def test_absent_nan_features_stay_out_of_output_and_gradients() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_attention(AttentionOptions(dim=4, attn_dim=3), dims)
    feats = _random_inputs(3, dims)
    presence = {"a": torch.tensor([True, False, False]), "b": torch.tensor([True, True, False])}
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_dropout_only_in_training() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_attention(AttentionOptions(dim=16, dropout=0.5), dims)
    feats = _random_inputs(4, dims)
    presence = {n: torch.ones(4, dtype=torch.bool) for n in dims}
    fusion.eval()
    torch.testing.assert_close(fusion(feats, presence), fusion(feats, presence))
    fusion.train()
    assert (fusion(feats, presence) == 0).any()


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_attention(AttentionOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.attn_dim must be a positive integer, got -3"):
        build_attention(AttentionOptions(attn_dim=-3), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got -0.1"):
        build_attention(AttentionOptions(dropout=-0.1), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'attention' needs at least one input"):
        build_attention(AttentionOptions(), {})
