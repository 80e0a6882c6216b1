"""Contract tests run over every registered head: shapes, gradients, dropout only in training, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import omnifuse.catalog  # noqa: F401  (fills the registries)
from omnifuse.heads.base import HEADS, Head

IN_DIM = 6
OUT_DIM = 2  # valid for every task: binary needs exactly 2, multiclass at least 2
BATCH = 5
HIDDEN = [0, 8]  # 0: a single linear layer


def _build(name: str, hidden_dim: int, dropout: float = 0.1) -> Head:
    head = HEADS.get(name)(IN_DIM, OUT_DIM, hidden_dim, dropout)
    assert isinstance(head, Head), f"{name} built a {type(head).__name__}, not a Head"
    return head


def test_the_task_heads_are_registered() -> None:
    assert {"binary", "multiclass", "multilabel", "regression"} <= set(HEADS.names())


@pytest.mark.parametrize("hidden_dim", HIDDEN)
@pytest.mark.parametrize("name", HEADS.names())
def test_output_shape_and_dims(name: str, hidden_dim: int) -> None:
    head = _build(name, hidden_dim)
    assert (head.in_dim, head.out_dim) == (IN_DIM, OUT_DIM)
    for mode in (True, False):
        out = head.train(mode)(torch.randn(BATCH, IN_DIM))
        assert out.shape == (BATCH, OUT_DIM) and out.dtype == torch.float32
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", HEADS.names())
def test_hidden_dim_adds_a_layer(name: str) -> None:
    widths = {h: sum(p.numel() for p in _build(name, h).parameters()) for h in HIDDEN}
    assert widths[0] == IN_DIM * OUT_DIM + OUT_DIM, "hidden_dim 0 must be one Linear(in_dim, out_dim)"
    assert widths[8] > widths[0], "hidden_dim > 0 did not add a hidden layer"


@pytest.mark.parametrize("hidden_dim", HIDDEN)
@pytest.mark.parametrize("name", HEADS.names())
def test_backward_reaches_every_parameter_and_the_input(name: str, hidden_dim: int) -> None:
    head = _build(name, hidden_dim).train()
    x = torch.randn(BATCH, IN_DIM, requires_grad=True)
    out = head(x)
    (out * torch.randn_like(out)).sum().backward()
    params = list(head.named_parameters())
    assert params, f"{name} has no parameters"
    for pname, param in params:
        assert param.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"
    assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient flows back to the fused vector"


@pytest.mark.parametrize("name", HEADS.names())
def test_dropout_only_in_training(name: str) -> None:
    head = _build(name, 8, dropout=0.5)
    x = torch.randn(BATCH, IN_DIM)
    head.eval()
    torch.testing.assert_close(head(x), head(x), rtol=0, atol=0)
    head.train()
    assert not torch.equal(head(x), head(x)), "dropout 0.5 had no effect in training mode"


@pytest.mark.parametrize("hidden_dim", HIDDEN)
@pytest.mark.parametrize("name", HEADS.names())
def test_safetensors_round_trip(name: str, hidden_dim: int, tmp_path: Path) -> None:
    head = _build(name, hidden_dim).eval()
    x = torch.randn(BATCH, IN_DIM)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    torch.manual_seed(1)  # the fresh head starts from other random weights
    fresh = _build(name, hidden_dim).eval()
    assert not torch.equal(fresh(x), head(x))
    fresh.load_state_dict(load_file(str(tmp_path / "head.safetensors")), strict=True)
    torch.testing.assert_close(fresh(x), head(x), rtol=0, atol=0)
