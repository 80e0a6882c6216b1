"""Classification heads: binary and multiclass (softmax over C logits), multilabel (C independent logits)."""

from __future__ import annotations

from omnifuse.errors import OptionError
from omnifuse.heads.base import HEADS, Head


def build_binary(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """Two softmax logits (negative, positive).

    Raises:
        OptionError: ``out_dim`` is not 2.
    """
    if out_dim != 2:
        raise OptionError(
            f"a binary head has 2 logits, got out_dim={out_dim}; use task 'multiclass' for "
            "more than two classes"
        )
    return Head(in_dim, out_dim, hidden_dim, dropout)


def build_multiclass(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """One softmax logit per class.

    Raises:
        OptionError: fewer than 2 classes.
    """
    if out_dim < 2:
        raise OptionError(
            f"a multiclass head needs at least 2 classes, got out_dim={out_dim}; check the label column"
        )
    return Head(in_dim, out_dim, hidden_dim, dropout)


def build_multilabel(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """One independent (sigmoid) logit per label."""
    return Head(in_dim, out_dim, hidden_dim, dropout)


HEADS.add("binary", build_binary)
HEADS.add("multiclass", build_multiclass)
HEADS.add("multilabel", build_multilabel)
