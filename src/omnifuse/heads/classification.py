"""Classification heads: binary and multiclass (softmax over C logits), multilabel (C independent logits)."""

from __future__ import annotations

from torch import Tensor

from omnifuse.heads.base import HEADS, Head, head_mlp


class ClassificationHead(Head):
    """Logits for a classification task; the task applies softmax or sigmoid and computes the loss.

    Args:
        in_dim: width of the fused vector.
        out_dim: number of logits (classes, or labels for multilabel).
        hidden_dim: width of the hidden layer, 0 for a single Linear.
        dropout: dropout on the input and after the hidden layer.
    Inputs:
        x: (B, in_dim)
    Returns:
        (B, out_dim) logits.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = head_mlp(in_dim, out_dim, hidden_dim, dropout)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_binary(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """Two softmax logits (negative, positive).

    Raises:
        ValueError: ``out_dim`` is not 2.
    """
    if out_dim != 2:
        raise ValueError(
            f"a binary head has 2 logits, got out_dim={out_dim}; use task 'multiclass' for "
            "more than two classes"
        )
    return ClassificationHead(in_dim, out_dim, hidden_dim, dropout)


def build_multiclass(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """One softmax logit per class.

    Raises:
        ValueError: fewer than 2 classes.
    """
    if out_dim < 2:
        raise ValueError(
            f"a multiclass head needs at least 2 classes, got out_dim={out_dim}; check the label column"
        )
    return ClassificationHead(in_dim, out_dim, hidden_dim, dropout)


def build_multilabel(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """One independent (sigmoid) logit per label."""
    return ClassificationHead(in_dim, out_dim, hidden_dim, dropout)


HEADS.add("binary", build_binary)
HEADS.add("multiclass", build_multiclass)
HEADS.add("multilabel", build_multilabel)
