"""Unit tests of the late fusion."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.late import LateOptions, build_late
from omnifuse.heads.base import Head

DIMS = {"audio": 3, "image": 5, "text": 4}
PRESENCE = {
    "audio": torch.tensor([True, True, False, False, True]),
    "image": torch.tensor([True, False, False, False, False]),
    "text": torch.tensor([True, True, True, False, False]),
}


def _inputs(batch: int, dims: dict[str, int]) -> dict[str, EncoderOutput]:
    return {n: EncoderOutput(torch.randn(batch, d)) for n, d in dims.items()}


def _votes(fusion: nn.Module, feats: dict[str, EncoderOutput]) -> torch.Tensor:
    """Each input's vote, computed directly: (B, M, dim)."""
    return torch.stack(
        [vote(feats[n].pooled) for n, vote in zip(sorted(feats), fusion.votes, strict=True)], 1
    )


def test_mean_is_the_mean_of_present_votes() -> None:
    fusion = build_late(LateOptions(dim=6, hidden_dim=8, combine="mean"), DIMS).eval()
    feats = _inputs(5, DIMS)
    out = fusion(feats, PRESENCE)
    votes = _votes(fusion, feats)  # (B, M, dim)
    present = torch.stack([PRESENCE[n] for n in sorted(DIMS)], 1)  # (B, M)
    expected = torch.stack(
        [votes[b, present[b]].mean(0) if present[b].any() else torch.zeros(6) for b in range(5)]
    )
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out[3], torch.zeros(6))  # nothing present
    assert fusion.logits is None  # "mean" learns no weights
    torch.testing.assert_close(fusion.last_weights[0], torch.full((3,), 1 / 3))
    torch.testing.assert_close(fusion.last_weights[1], torch.tensor([0.5, 0.0, 0.5]))


def test_weighted_weights_renormalise_over_present() -> None:
    """Logits (0, ln 3, 0) give (1/5, 3/5, 1/5) with all present, (1/4, 3/4, 0) without text, etc."""
    fusion = build_late(LateOptions(dim=4, hidden_dim=0), DIMS).eval()
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([0.0, math.log(3.0), 0.0]))
    presence = {
        "audio": torch.tensor([True, True, False, True, False]),
        "image": torch.tensor([True, True, True, False, False]),
        "text": torch.tensor([True, False, True, True, False]),
    }
    feats = _inputs(5, DIMS)
    out = fusion(feats, presence)
    expected_weights = torch.tensor(
        [[0.2, 0.6, 0.2], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]
    )
    torch.testing.assert_close(fusion.last_weights, expected_weights)
    votes = _votes(fusion, feats)  # (B, M, dim)
    torch.testing.assert_close(out, (expected_weights.unsqueeze(-1) * votes).sum(1))


def test_linear_head_makes_it_a_weighted_mean_of_per_input_classifiers() -> None:
    """With head.hidden_dim 0 the logits are sum_i w_i (W vote_i + b): true late fusion."""
    fusion = build_late(LateOptions(dim=6, hidden_dim=8), DIMS).eval()
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([0.3, -1.0, 0.7]))
    head = Head(6, 3, hidden_dim=0, dropout=0.2).eval()
    feats = _inputs(5, DIMS)
    logits = head(fusion(feats, PRESENCE))  # (B, C)
    per_input = head(_votes(fusion, feats))  # (B, M, C) one classifier per input
    weights = fusion.last_weights
    assert weights is not None
    has_any = weights.sum(1) > 0
    expected = (weights.unsqueeze(-1) * per_input).sum(1)  # (B, C)
    torch.testing.assert_close(logits[has_any], expected[has_any])


def test_hidden_dim_zero_gives_linear_votes_and_hidden_gives_mlp() -> None:
    linear = build_late(LateOptions(dim=4, hidden_dim=0), DIMS)
    assert all(len(v.net) == 1 and isinstance(v.net[0], nn.Linear) for v in linear.votes)
    deep = build_late(LateOptions(dim=4, hidden_dim=7, dropout=0.0), DIMS)
    assert all(v.net[0].out_features == 7 for v in deep.votes)


def test_absent_nan_features_stay_out_of_output_and_gradients() -> None:
    dims = {"a": 3, "b": 2}
    fusion = build_late(LateOptions(dim=4, hidden_dim=5), dims)
    feats = _inputs(3, dims)
    presence = {"a": torch.tensor([True, False, False]), "b": torch.tensor([True, True, False])}
    feats["a"] = EncoderOutput(torch.where(presence["a"][:, None], feats["a"].pooled, float("nan")))
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_forward_time_is_printed() -> None:
    dims = {"audio": 128, "image": 128, "text": 128}
    fusion = build_late(LateOptions(), dims).eval()
    feats = _inputs(32, dims)
    presence = {n: torch.ones(32, dtype=torch.bool) for n in dims}
    with torch.no_grad():
        fusion(feats, presence)
        start = time.perf_counter()
        out = fusion(feats, presence)
    print(f"late forward, batch 32, 3 inputs at 128: {1000 * (time.perf_counter() - start):.2f} ms")
    assert out.shape == (32, 64)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_late(LateOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.hidden_dim must be >= 0, got -1; use 0 for linear votes"):
        build_late(LateOptions(hidden_dim=-1), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.combine must be one of weighted, mean, got 'max'"):
        build_late(LateOptions(combine="max"), {"a": 2})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got 1.0"):
        build_late(LateOptions(dropout=1.0), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'late' needs at least one input"):
        build_late(LateOptions(), {})
