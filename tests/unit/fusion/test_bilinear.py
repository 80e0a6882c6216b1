"""Unit tests of the bilinear (MFB) fusion."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.bilinear import BilinearFusion, BilinearOptions, build_bilinear, signed_sqrt


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_inputs(batch: int, dims: dict[str, int]) -> dict[str, EncoderOutput]:
    return {n: EncoderOutput(torch.randn(batch, d)) for n, d in dims.items()}


def _identity_fusion(bias_b: float) -> BilinearFusion:
    """dim 2, factor 2, 4-wide inputs, identity projections; a's bias 0, b's bias ``bias_b``."""
    fusion = build_bilinear(BilinearOptions(dim=2, factor=2, dropout=0.0), {"a": 4, "b": 4})
    with torch.no_grad():
        for proj, bias in zip(fusion.proj, (0.0, bias_b), strict=True):
            assert isinstance(proj, nn.Linear)
            proj.weight.copy_(torch.eye(4))
            proj.bias.fill_(bias)
    return fusion


def test_rows_have_unit_norm_and_both_absent_gives_zeros() -> None:
    dims = {"audio": 5, "text": 3}
    fusion = build_bilinear(BilinearOptions(dim=6, factor=3), dims).eval()
    presence = {
        "audio": torch.tensor([True, True, False, False]),
        "text": torch.tensor([True, False, True, False]),
    }
    out = fusion(_random_inputs(4, dims), presence)
    assert fusion.output_dim == 6 and out.shape == (4, 6)
    torch.testing.assert_close(out[:3].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(out[3], torch.zeros(6))


def test_hand_computed_pooling_and_normalisation() -> None:
    """x_a * x_b = (1, 2, 3, -5), pooled in pairs (3, -2), signed sqrt (sqrt 3, -sqrt 2), L2 / sqrt 5."""
    fusion = _identity_fusion(bias_b=0.0)
    xa, xb = torch.tensor([[1.0, 2.0, 3.0, -1.0]]), torch.tensor([[1.0, 1.0, 1.0, 5.0]])
    out = fusion(
        {"a": EncoderOutput(xa), "b": EncoderOutput(xb)},
        {"a": torch.tensor([True]), "b": torch.tensor([True])},
    )
    expected = torch.tensor([[math.sqrt(3 / 5), -math.sqrt(2 / 5)]])
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


def test_one_absent_uses_the_learned_bias_stand_in() -> None:
    """b absent: its projection is its bias (1, 1, 1, 1), so the row is a's pairs (3, 2), normalised."""
    fusion = _identity_fusion(bias_b=1.0)
    xa = torch.tensor([[1.0, 2.0, 3.0, -1.0]])
    xb = torch.full((1, 4), float("nan"))
    out = fusion(
        {"a": EncoderOutput(xa), "b": EncoderOutput(xb)},
        {"a": torch.tensor([True]), "b": torch.tensor([False])},
    )
    expected = torch.tensor([[math.sqrt(3 / 5), math.sqrt(2 / 5)]])
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


def test_absent_nan_features_stay_out_of_output_and_gradients() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_bilinear(BilinearOptions(dim=4, factor=2), dims)
    feats = _random_inputs(3, dims)
    presence = {"a": torch.tensor([True, False, False]), "b": torch.tensor([True, True, False])}
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_signed_sqrt_is_close_and_has_a_finite_gradient_at_zero() -> None:
    x = torch.tensor([-4.0, 0.0, 9.0], requires_grad=True)
    y = signed_sqrt(x)
    torch.testing.assert_close(y, torch.tensor([-2.0, 0.0, 3.0]), atol=1e-3, rtol=0)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[1] > 0


def test_dropout_only_in_training() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_bilinear(BilinearOptions(dim=8, factor=1, dropout=0.5), dims)
    feats = _random_inputs(4, dims)
    presence = {n: torch.ones(4, dtype=torch.bool) for n in dims}
    fusion.eval()
    torch.testing.assert_close(fusion(feats, presence), fusion(feats, presence))
    fusion.train()
    assert (fusion(feats, presence) == 0).any()


def test_needs_exactly_two_inputs() -> None:
    msg = r"fusion 'bilinear' takes exactly 2 inputs, got {}: {}; choose two columns, or use fusion 'tensor'"
    with pytest.raises(ValueError, match=msg.format(3, r"\['a', 'b', 'c'\]")):
        build_bilinear(BilinearOptions(), {"c": 2, "a": 2, "b": 2})
    with pytest.raises(ValueError, match=msg.format(1, r"\['a'\]")):
        build_bilinear(BilinearOptions(), {"a": 2})


def test_bad_options() -> None:
    dims = {"a": 2, "b": 2}
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_bilinear(BilinearOptions(dim=0), dims)
    with pytest.raises(ValueError, match=r"fusion.factor must be a positive integer, got 0"):
        build_bilinear(BilinearOptions(factor=0), dims)
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got -0.5"):
        build_bilinear(BilinearOptions(dropout=-0.5), dims)
