"""The head contract and the HEADS registry (keyed by task name)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from omnifuse.errors import OptionError
from omnifuse.layers.mlp import MLP, check_dropout, check_positive
from omnifuse.registry import Registry


class Head(nn.Module):
    """Maps the fused vector to the task's outputs through ``head_mlp``; the loss lives in the task.

    Every task uses this layout; the task-specific builders (classification.py, regression.py) check
    ``out_dim`` and document what the outputs mean.

    Args:
        in_dim: width of the fused vector.
        out_dim: number of outputs (logits for classification, targets for regression).
        hidden_dim: width of the hidden layer, 0 for a single Linear.
        dropout: dropout on the input and after the hidden layer.
    Inputs:
        x: (B, in_dim) the fused vector.
    Returns:
        (B, out_dim) logits (classification) or predictions (regression).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = head_mlp(in_dim, out_dim, hidden_dim, dropout)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def head_mlp(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> nn.Sequential:
    """Dropout -> Linear, or dropout -> Linear -> GELU -> dropout -> Linear when ``hidden_dim > 0``.

    The layout of the classifier head of RoBERTa in Hugging Face transformers.

    Raises:
        OptionError: a width is not positive, ``hidden_dim`` is negative or dropout is outside [0, 1).
    """
    check_positive(in_dim, "head in_dim")
    check_positive(out_dim, "head out_dim")
    if hidden_dim < 0:
        raise OptionError(f"head.hidden_dim must be >= 0, got {hidden_dim!r}; use 0 for one linear layer")
    check_dropout(dropout, "head.dropout")
    hidden = [hidden_dim] if hidden_dim > 0 else []
    return nn.Sequential(nn.Dropout(dropout), MLP(in_dim, hidden, out_dim, dropout=dropout))


HeadBuilder = Callable[[int, int, int, float], Head]
"""``(in_dim, out_dim, hidden_dim, dropout) -> Head``; ``hidden_dim`` 0 means a single Linear."""

HEADS: Registry[HeadBuilder] = Registry("head")
