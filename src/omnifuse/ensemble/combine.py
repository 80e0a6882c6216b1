"""Averaging an ensemble's members: class probabilities (softmax or sigmoid) or regression predictions.

The average is turned back into pseudo-logits whose task probabilities are the averaged ones (log p for a
softmax, logit p for sigmoids, the value itself for regression), so that every task function (decode,
probabilities, metrics, loss) works on an ensemble's output as on one model's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

SPACES = {"binary": "softmax", "multiclass": "softmax", "multilabel": "sigmoid", "regression": "identity"}
EPS = 1e-7  # probabilities are clamped to [EPS, 1 - EPS] before log / logit


def space_of(task_name: str) -> str:
    """Where a task's outputs are averaged: softmax, sigmoid or identity."""
    assert task_name in SPACES, f"ensembles are made of predictive models, not {task_name!r} ones"
    return SPACES[task_name]


def to_average(space: str, logits: Tensor) -> Tensor:
    """(B, C) logits of one model -> (B, C) values in the averaged space (probabilities or predictions)."""
    if space == "softmax":
        return torch.softmax(logits.float(), dim=-1)
    if space == "sigmoid":
        return torch.sigmoid(logits.float())
    return logits.float()


def from_average(space: str, values: Tensor) -> Tensor:
    """(B, C) averaged values -> (B, C) pseudo-logits whose softmax / sigmoid gives ``values`` back."""
    if space == "softmax":
        return values.clamp(EPS, 1.0).log()
    if space == "sigmoid":
        p = values.clamp(EPS, 1.0 - EPS)
        return p.log() - (-p).log1p()  # logit(p)
    return values


def combine(space: str, outputs: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Pseudo-logits (B, C) of the ``weights``-weighted mean of the members' ``outputs`` (K x (B, C))."""
    w = torch.tensor([float(x) for x in weights], dtype=torch.float32, device=outputs[0].device)  # (K,)
    stacked = torch.stack([to_average(space, o) for o in outputs])  # (K, B, C)
    mean = (stacked * w.view(-1, 1, 1)).sum(dim=0) / w.sum()  # (B, C)
    return from_average(space, mean)


class EnsembleModel(nn.Module):
    """Runs every member on the same batch and returns the pseudo-logits of their weighted average.

    Args:
        members: trained models (``MultimodalModel``) that read the same inputs.
        weights: one positive weight per member (Caruana: how often it was selected).
        space: where outputs are averaged (``space_of(task name)``).
        temperatures: one per member: its logits are divided by it before averaging (a calibrated member's
            temperature, ``training.calibrate``); None: 1.0 each.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float], space: str,
                 temperatures: Sequence[float] | None = None) -> None:
        super().__init__()
        assert len(members) == len(weights) > 0 and all(w > 0 for w in weights), "one positive weight each"
        self.members = nn.ModuleList(members)
        self.weights = [float(w) for w in weights]
        self.space = space
        self.temperatures = [float(t) for t in temperatures] if temperatures else [1.0] * len(members)
        assert len(self.temperatures) == len(members), "one temperature per member"

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """Pseudo-logits (B, C) of the weighted average of the members' outputs."""
        pairs = zip(self.members, self.temperatures, strict=True)
        outputs = [m(inputs, presence).float() / t for m, t in pairs]  # K x (B, C) calibrated logits
        return combine(self.space, outputs, self.weights)
