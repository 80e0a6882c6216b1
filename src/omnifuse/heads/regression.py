"""Regression head: one output per target."""

from __future__ import annotations

from torch import Tensor

from omnifuse.heads.base import HEADS, Head, head_mlp


class RegressionHead(Head):
    """Predictions for ``out_dim`` targets, in the targets' (normalised) units; no output activation.

    Args:
        in_dim: width of the fused vector.
        out_dim: number of targets.
        hidden_dim: width of the hidden layer, 0 for a single Linear.
        dropout: dropout on the input and after the hidden layer.
    Inputs:
        x: (B, in_dim)
    Returns:
        (B, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = head_mlp(in_dim, out_dim, hidden_dim, dropout)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_regression(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """A RegressionHead; the builder signature every HEADS entry shares."""
    return RegressionHead(in_dim, out_dim, hidden_dim, dropout)


HEADS.add("regression", build_regression)
