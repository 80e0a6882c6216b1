"""Unit tests of the gated (GMU) fusion."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.gated import GatedFusion, GatedOptions, build_gated


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_inputs(batch: int, dims: dict[str, int]) -> dict[str, EncoderOutput]:
    return {n: EncoderOutput(torch.randn(batch, d)) for n, d in dims.items()}


def _identity_projections(fusion: GatedFusion) -> None:
    with torch.no_grad():
        for proj in fusion.proj:
            assert isinstance(proj, nn.Linear)
            proj.weight.copy_(torch.eye(proj.weight.shape[0]))
            proj.bias.zero_()


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_weights_sum_to_one_over_present_and_zero_on_absent(gate: str) -> None:
    dims = {"audio": 3, "image": 5, "text": 4}
    fusion = build_gated(GatedOptions(dim=6, gate=gate), dims)
    presence = {
        "audio": torch.tensor([True, True, False, False, True]),
        "image": torch.tensor([True, False, False, False, False]),
        "text": torch.tensor([True, True, True, False, False]),
    }
    out = fusion(_random_inputs(5, dims), presence)
    assert out.shape == (5, 6) and torch.isfinite(out).all()
    weights = fusion.last_weights
    assert weights is not None and weights.shape == (5, 3) and not weights.requires_grad
    present = torch.stack([presence[n] for n in sorted(dims)], dim=1)  # (B, M)
    assert (weights[~present] == 0).all()
    assert (weights[present] > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[3], torch.zeros(6))  # nothing present


def test_hand_computed_softmax_gate() -> None:
    """Identity projections, gate scores fixed at (0, ln 3): weights 1/4, 3/4 and fused = mix of tanh(x)."""
    fusion = build_gated(GatedOptions(dim=2), {"a": 2, "b": 2})
    _identity_projections(fusion)
    with torch.no_grad():
        fusion.gate_scores.weight.zero_()
        fusion.gate_scores.bias.copy_(torch.tensor([0.0, math.log(3.0)]))
    xa, xb = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 0.1]])
    feats = {"a": EncoderOutput(xa), "b": EncoderOutput(xb)}
    out = fusion(feats, {"a": torch.tensor([True]), "b": torch.tensor([True])})
    torch.testing.assert_close(fusion.last_weights, torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(out, 0.25 * torch.tanh(xa) + 0.75 * torch.tanh(xb))
    out = fusion(feats, {"a": torch.tensor([True]), "b": torch.tensor([False])})
    torch.testing.assert_close(fusion.last_weights, torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(out, torch.tanh(xa))


def test_hand_computed_sigmoid_gate() -> None:
    """Sigmoid gates 1/2 and 3/4 (scores 0, ln 3) renormalise to 0.4 and 0.6."""
    fusion = build_gated(GatedOptions(dim=2, gate="sigmoid"), {"a": 2, "b": 2})
    _identity_projections(fusion)
    with torch.no_grad():
        fusion.gate_scores.weight.zero_()
        fusion.gate_scores.bias.copy_(torch.tensor([0.0, math.log(3.0)]))
    xa, xb = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 0.1]])
    out = fusion(
        {"a": EncoderOutput(xa), "b": EncoderOutput(xb)},
        {"a": torch.tensor([True]), "b": torch.tensor([True])},
    )
    torch.testing.assert_close(fusion.last_weights, torch.tensor([[0.4, 0.6]]))
    torch.testing.assert_close(out, 0.4 * torch.tanh(xa) + 0.6 * torch.tanh(xb))


def test_gates_depend_on_the_row() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_gated(GatedOptions(dim=4), dims)
    fusion(_random_inputs(4, dims), {n: torch.ones(4, dtype=torch.bool) for n in dims})
    weights = fusion.last_weights
    assert weights is not None
    assert (weights[0] - weights[1:]).abs().max() > 1e-3


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_absent_nan_features_stay_out_of_output_and_gradients(gate: str) -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_gated(GatedOptions(dim=4, gate=gate), dims)
    feats = _random_inputs(3, dims)
    presence = {"a": torch.tensor([True, False, False]), "b": torch.tensor([True, True, False])}
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    (100 * out).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_dropout_only_in_training() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_gated(GatedOptions(dim=16, dropout=0.5), dims)
    feats = _random_inputs(4, dims)
    presence = {n: torch.ones(4, dtype=torch.bool) for n in dims}
    fusion.eval()
    torch.testing.assert_close(fusion(feats, presence), fusion(feats, presence))
    fusion.train()
    assert (fusion(feats, presence) == 0).any()


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_gated(GatedOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.gate must be one of softmax, sigmoid, got 'relu'"):
        build_gated(GatedOptions(gate="relu"), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got 1.0"):
        build_gated(GatedOptions(dropout=1.0), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'gated' needs at least one input"):
        build_gated(GatedOptions(), {})
