"""The head contract and the HEADS registry (keyed by task name)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from omnifuse.layers.mlp import MLP, check_dropout, check_positive
from omnifuse.registry import Registry


class Head(nn.Module):
    """Base class: maps the fused vector to the task's outputs. The loss lives in the task, not here.

    Inputs:
        x: (B, in_dim) the fused vector.
    Returns:
        (B, out_dim) logits (classification) or predictions (regression).
    """

    in_dim: int
    out_dim: int

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def head_mlp(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> nn.Sequential:
    """Dropout -> Linear, or dropout -> Linear -> GELU -> dropout -> Linear when ``hidden_dim > 0``.

    The layout of the classifier head of RoBERTa in Hugging Face transformers.

    Raises:
        ValueError: a width is not positive, ``hidden_dim`` is negative or dropout is outside [0, 1).
    """
    check_positive(in_dim, "head in_dim")
    check_positive(out_dim, "head out_dim")
    if hidden_dim < 0:
        raise ValueError(f"head.hidden_dim must be >= 0, got {hidden_dim!r}; use 0 for a single linear layer")
    check_dropout(dropout, "head.dropout")
    hidden = [hidden_dim] if hidden_dim > 0 else []
    return nn.Sequential(nn.Dropout(dropout), MLP(in_dim, hidden, out_dim, dropout=dropout))


HeadBuilder = Callable[[int, int, int, float], Head]
"""``(in_dim, out_dim, hidden_dim, dropout) -> Head``; ``hidden_dim`` 0 means a single Linear."""

HEADS: Registry[HeadBuilder] = Registry("head")
