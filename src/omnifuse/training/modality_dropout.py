"""Modality dropout: hide whole modalities of training rows so the model learns to cope without them."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import Tensor


def drop_modalities(
    presence: dict[str, Tensor], p: float, generator: torch.Generator | None = None,
    keep: Collection[str] = (),
) -> dict[str, Tensor]:
    """Sets each (row, modality) presence to False with probability ``p``, keeping one present per row.

    Inputs:
        presence: {name: (B,) bool}.
        keep: inputs never hidden (a generation model's prompt: the instruction, not a modality).
    Returns:
        a new dict; rows that would lose every present modality keep their original presence.
    """
    droppable = {n: v for n, v in presence.items() if n not in keep}
    if p <= 0 or len(droppable) < 2:
        return presence
    return presence | _drop(droppable, p, generator)


def _drop(presence: dict[str, Tensor], p: float, generator: torch.Generator | None) -> dict[str, Tensor]:
    names = sorted(presence)
    original = torch.stack([presence[n] for n in names], dim=1)  # (B, M)
    keep = torch.rand(original.shape, generator=generator) >= p  # (B, M)
    dropped = original & keep.to(original.device)
    empty = ~dropped.any(dim=1, keepdim=True)  # (B, 1) rows left with nothing
    result = torch.where(empty, original, dropped)
    return {n: result[:, i] for i, n in enumerate(names)}
