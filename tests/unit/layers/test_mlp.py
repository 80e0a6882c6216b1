"""Unit tests of the MLP, activations, masked_softmax and fusion_inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.layers.mlp import MLP, fusion_inputs, make_activation, masked_softmax


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_mlp_shapes_and_layout() -> None:
    mlp = MLP(4, [8, 6], 3, dropout=0.1, activation="relu", norm=True)
    kinds = [type(m) for m in mlp.net]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert mlp(torch.randn(5, 4)).shape == (5, 3)
    assert mlp(torch.randn(2, 7, 4)).shape == (2, 7, 3)


def test_mlp_without_hidden_is_one_linear() -> None:
    mlp = MLP(4, [], 2)
    assert len(mlp.net) == 1 and isinstance(mlp.net[0], nn.Linear)


def test_mlp_hand_computed() -> None:
    mlp = MLP(2, [2], 1, activation="relu")
    first, last = mlp.net[0], mlp.net[2]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[2.0, 3.0]]))
        last.bias.fill_(0.5)
    x = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    # row 0: relu([1, -2]) = [1, 0] -> 2 + 0.5; row 1: relu([-1, 2]) = [0, 2] -> 6 + 0.5
    torch.testing.assert_close(mlp(x), torch.tensor([[2.5], [6.5]]))


def test_mlp_no_dropout_layer_when_zero() -> None:
    assert not any(isinstance(m, nn.Dropout) for m in MLP(3, [4], 2).net)


def test_unknown_activation() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; use one of: gelu, identity"):
        make_activation("swish")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP(3, [4], 2, activation="swish")


def test_bad_widths_and_dropout() -> None:
    with pytest.raises(ValueError, match=r"MLP in_dim must be a positive integer, got 0"):
        MLP(0, [4], 2)
    with pytest.raises(ValueError, match=r"MLP out_dim must be a positive integer, got -1"):
        MLP(3, [4], -1)
    with pytest.raises(ValueError, match=r"MLP hidden width must be a positive integer, got 0"):
        MLP(3, [4, 0], 2)
    with pytest.raises(ValueError, match=r"MLP dropout must be in \[0, 1\), got 1.0"):
        MLP(3, [4], 2, dropout=1.0)


def test_masked_softmax_hand_computed() -> None:
    scores = torch.tensor([[0.0, math.log(3.0), 5.0], [1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    weights = masked_softmax(scores, mask, dim=1)
    torch.testing.assert_close(weights, torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]]))


def test_masked_softmax_all_masked_has_finite_gradient_and_none_to_masked() -> None:
    scores = torch.randn(3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    weights = masked_softmax(scores, mask, dim=-1)
    (weights * torch.randn(3, 4)).sum().backward()
    assert scores.grad is not None
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.tensor([1.0, 0.0, 1.0]))


def test_masked_softmax_broadcast_mask_other_dim() -> None:
    scores = torch.randn(2, 3, 4)
    mask = torch.tensor([True, False, True]).view(1, 3, 1)
    weights = masked_softmax(scores, mask, dim=1)
    assert (weights[:, 1] == 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 4))


def test_fusion_inputs_zeroes_absent_rows_and_orders_by_names() -> None:
    feats = {"b": EncoderOutput(torch.full((2, 1), float("nan"))), "a": EncoderOutput(torch.ones(2, 2))}
    presence = {"b": torch.tensor([False, False]), "a": torch.tensor([True, False])}
    pooled, present = fusion_inputs(["a", "b"], feats, presence)
    torch.testing.assert_close(pooled[0], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(pooled[1], torch.zeros(2, 1))
    assert present.tolist() == [[True, False], [False, False]]


def test_fusion_inputs_wrong_names() -> None:
    feats = {"a": EncoderOutput(torch.ones(2, 2))}
    presence = {"a": torch.ones(2, dtype=torch.bool)}
    with pytest.raises(ValueError, match=r"built for inputs \['a', 'b'\] but features has \['a'\]"):
        fusion_inputs(["a", "b"], feats, presence)
    with pytest.raises(ValueError, match=r"built for inputs \['a'\] but presence has \[\]"):
        fusion_inputs(["a"], feats, {})
