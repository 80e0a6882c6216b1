"""Unit tests of the task heads and the HEADS registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import omnifuse.heads.classification  # noqa: F401  (registers binary, multiclass, multilabel)
import omnifuse.heads.regression  # noqa: F401  (registers regression)
from omnifuse.heads.base import HEADS, Head


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


OUT_DIMS = {"binary": 2, "multiclass": 5, "multilabel": 3, "regression": 1}


def test_registered_names() -> None:
    assert HEADS.names() == ["binary", "multiclass", "multilabel", "regression"]


@pytest.mark.parametrize("name", sorted(OUT_DIMS))
@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_shapes_backward_and_round_trip(name: str, hidden_dim: int) -> None:
    head = HEADS.get(name)(6, OUT_DIMS[name], hidden_dim, 0.1)
    assert isinstance(head, Head) and (head.in_dim, head.out_dim) == (6, OUT_DIMS[name])
    x = torch.randn(4, 6, requires_grad=True)
    out = head(x)
    assert out.shape == (4, OUT_DIMS[name]) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in head.parameters())
    head.eval()
    clone = HEADS.get(name)(6, OUT_DIMS[name], hidden_dim, 0.1).eval()
    clone.load_state_dict(head.state_dict())
    torch.testing.assert_close(clone(x), head(x), rtol=0, atol=0)


def test_hidden_dim_zero_is_single_linear() -> None:
    head = HEADS.get("multiclass")(6, 3, 0, 0.0)
    assert sum(isinstance(m, nn.Linear) for m in head.modules()) == 1
    head = HEADS.get("regression")(6, 2, 16, 0.0)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 16), (16, 2)]


def test_hand_computed_linear_regression() -> None:
    head = HEADS.get("regression")(2, 1, 0, 0.0)
    linear = next(m for m in head.modules() if isinstance(m, nn.Linear))
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, -1.0]]))
        linear.bias.fill_(0.5)
    torch.testing.assert_close(head(torch.tensor([[1.0, 3.0]])), torch.tensor([[-0.5]]))


def test_dropout_is_active_only_in_training() -> None:
    head = HEADS.get("multilabel")(32, 4, 0, 0.5)
    x = torch.randn(8, 32)
    head.eval()
    torch.testing.assert_close(head(x), head(x))
    head.train()
    assert not torch.allclose(head(x), head(x))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"a binary head has 2 logits, got out_dim=3; use task 'multiclass'"):
        HEADS.get("binary")(4, 3, 0, 0.0)
    with pytest.raises(ValueError, match=r"a multiclass head needs at least 2 classes, got out_dim=1"):
        HEADS.get("multiclass")(4, 1, 0, 0.0)
    with pytest.raises(ValueError, match=r"head.hidden_dim must be >= 0, got -1"):
        HEADS.get("regression")(4, 1, -1, 0.0)
    with pytest.raises(ValueError, match=r"head.dropout must be in \[0, 1\), got 1.0"):
        HEADS.get("multilabel")(4, 2, 0, 1.0)
    with pytest.raises(ValueError, match=r"head in_dim must be a positive integer, got 0"):
        HEADS.get("regression")(0, 1, 0, 0.0)
    with pytest.raises(ValueError, match=r"head out_dim must be a positive integer, got 0"):
        HEADS.get("multilabel")(4, 0, 0, 0.0)
    with pytest.raises(KeyError, match=r"unknown head 'clasification'"):
        HEADS.get("clasification")
