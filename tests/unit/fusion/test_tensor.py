"""Unit tests of the tensor and low_rank_tensor fusions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.tensor import (
    LowRankTensorOptions,
    TensorFusion,
    TensorOptions,
    build_low_rank_tensor,
    build_tensor,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_inputs(batch: int, dims: dict[str, int]) -> dict[str, EncoderOutput]:
    return {n: EncoderOutput(torch.randn(batch, d)) for n, d in dims.items()}


def _identity_projections(fusion: TensorFusion) -> None:
    with torch.no_grad():
        for proj in fusion.proj:
            assert isinstance(proj, nn.Linear)
            proj.weight.copy_(torch.eye(proj.weight.shape[0]))
            proj.bias.fill_(5.0)  # must not leak into absent rows


def _one(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)


def test_tensor_equals_explicit_outer_product() -> None:
    fusion = build_tensor(TensorOptions(dim_per_input=2), {"a": 2, "b": 2})
    _identity_projections(fusion)
    xa, xb = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[0.5, -2.0], [4.0, 1.0]])
    out = fusion(
        {"b": EncoderOutput(xb), "a": EncoderOutput(xa)},
        {"a": torch.tensor([True, True]), "b": torch.tensor([True, False])},
    )
    assert fusion.output_dim == 9 and out.shape == (2, 9)
    za, zb = _one(xa + 5.0), _one(xb + 5.0)
    zb[1] = torch.tensor([0.0, 0.0, 1.0])  # b absent in row 1: h_b = 0, its 1 stays
    expected = torch.einsum("bi,bj->bij", za, zb).reshape(2, 9)  # (B, 3 * 3)
    torch.testing.assert_close(out, expected)
    grid = out[1].view(3, 3)  # (a terms, b terms)
    torch.testing.assert_close(grid[:, 2], za[1])  # a's own terms survive, times b's constant 1
    torch.testing.assert_close(grid[:, :2], torch.zeros(3, 2))


def test_tensor_three_inputs_keeps_constant_term_and_projects() -> None:
    dims = {"a": 3, "b": 2, "c": 4}
    fusion = build_tensor(TensorOptions(dim_per_input=2), dims)
    presence = {n: torch.tensor([True, False, True, False]) for n in dims}
    presence["c"] = torch.tensor([True, True, False, False])
    out = fusion(_random_inputs(4, dims), presence)
    assert fusion.output_dim == 27 and out.shape == (4, 27)
    torch.testing.assert_close(out[:, -1], torch.ones(4))  # product of the appended 1s
    torch.testing.assert_close(out[3], torch.eye(27)[-1])  # nothing present: only the constant term
    projected = build_tensor(TensorOptions(dim_per_input=2, proj_dim=5), dims)
    assert projected.output_dim == 5
    assert projected(_random_inputs(4, dims), presence).shape == (4, 5)


def test_tensor_size_limit() -> None:
    dims = {"a": 2, "b": 2, "c": 2}
    with pytest.raises(
        ValueError,
        match=r"\(16 \+ 1\)\^3 = 4913 values, above fusion.max_size=1000; lower fusion.dim_per_input "
        r"\(at most 9 fits\), raise fusion.max_size, or use fusion 'low_rank_tensor'",
    ):
        build_tensor(TensorOptions(max_size=1000), dims)
    assert build_tensor(TensorOptions(dim_per_input=9, max_size=1000), dims).output_dim == 1000
    four = {f"x{i}": 2 for i in range(4)}
    assert build_tensor(TensorOptions(), four).output_dim == 17**4  # 83521 fits the default limit
    with pytest.raises(ValueError, match=r"= 1419857 values, above fusion.max_size=100000"):
        build_tensor(TensorOptions(), {**four, "x4": 2})


def test_tensor_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim_per_input must be a positive integer, got 0"):
        build_tensor(TensorOptions(dim_per_input=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.max_size must be a positive integer, got 0"):
        build_tensor(TensorOptions(max_size=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.proj_dim must be >= 0, got -1"):
        build_tensor(TensorOptions(proj_dim=-1), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got 2.0"):
        build_tensor(TensorOptions(dropout=2.0), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'tensor' needs at least one input"):
        build_tensor(TensorOptions(), {})


def test_low_rank_rank_one_identity_like_factors() -> None:
    """Factors [[I], [1 1]] map [x; 1] to x + 1, so the output is (x_a + 1) * (x_b + 1) + bias."""
    fusion = build_low_rank_tensor(LowRankTensorOptions(rank=1, dim=2), {"a": 2, "b": 2})
    with torch.no_grad():
        for factor in fusion.factors:
            factor.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]))  # (R=1, 2 + 1, 2)
        fusion.bias.fill_(0.5)
    xa, xb = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[0.5, -2.0], [4.0, 1.0]])
    out = fusion(
        {"a": EncoderOutput(xa), "b": EncoderOutput(xb)},
        {"a": torch.tensor([True, True]), "b": torch.tensor([True, False])},
    )
    torch.testing.assert_close(out[0], (xa[0] + 1) * (xb[0] + 1) + 0.5)
    torch.testing.assert_close(out[1], (xa[1] + 1) + 0.5)  # b absent: its factor gives 1


def test_low_rank_equals_tensor_fusion_with_factorised_weight() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_low_rank_tensor(LowRankTensorOptions(rank=3, dim=4), dims)
    with torch.no_grad():
        fusion.bias.normal_()
    feats = _random_inputs(4, dims)
    presence = {"a": torch.tensor([True, False, True, False]), "b": torch.tensor([True, True, False, False])}
    out = fusion(feats, presence)
    za = _one(feats["a"].pooled * presence["a"][:, None])  # (B, 4)
    zb = _one(feats["b"].pooled * presence["b"][:, None])  # (B, 3)
    weight = torch.einsum("rio,rjo->ijo", fusion.factors[0], fusion.factors[1])  # (4, 3, dim)
    expected = torch.einsum("bi,bj,ijo->bo", za, zb, weight) + fusion.bias
    torch.testing.assert_close(out, expected)


def test_low_rank_projection_and_bad_options() -> None:
    dims = {"a": 7, "b": 5}
    fusion = build_low_rank_tensor(LowRankTensorOptions(rank=2, dim=3, dim_per_input=4), dims)
    assert [tuple(f.shape) for f in fusion.factors] == [(2, 5, 3), (2, 5, 3)]
    assert fusion(_random_inputs(2, dims), {n: torch.ones(2, dtype=torch.bool) for n in dims}).shape == (2, 3)
    with pytest.raises(ValueError, match=r"fusion.rank must be a positive integer, got 0"):
        build_low_rank_tensor(LowRankTensorOptions(rank=0), dims)
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got -2"):
        build_low_rank_tensor(LowRankTensorOptions(dim=-2), dims)
    with pytest.raises(ValueError, match=r"fusion.dim_per_input must be >= 0, got -1; use 0 for the encoder"):
        build_low_rank_tensor(LowRankTensorOptions(dim_per_input=-1), dims)
    with pytest.raises(ValueError, match="fusion 'low_rank_tensor' needs at least one input"):
        build_low_rank_tensor(LowRankTensorOptions(), {})


@pytest.mark.parametrize("name", ["tensor", "low_rank_tensor"])
def test_absent_nan_features_stay_out_of_output_and_gradients(name: str) -> None:
    dims = {"a": 3, "b": 2}
    fusion = (
        build_tensor(TensorOptions(dim_per_input=3), dims)
        if name == "tensor"
        else build_low_rank_tensor(LowRankTensorOptions(rank=2, dim=4, dim_per_input=3), dims)
    )
    feats = _random_inputs(3, dims)
    presence = {"a": torch.tensor([True, False, False]), "b": torch.tensor([True, True, False])}
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())
