"""Regression head: one output per target."""

from __future__ import annotations

from omnifuse.heads.base import HEADS, Head


def build_regression(in_dim: int, out_dim: int, hidden_dim: int, dropout: float) -> Head:
    """A Head; the builder signature every HEADS entry shares."""
    return Head(in_dim, out_dim, hidden_dim, dropout)


HEADS.add("regression", build_regression)
