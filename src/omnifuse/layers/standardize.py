"""Per-dimension standardisation of a frozen encoder's features, with statistics of the training rows.

A frozen pretrained encoder's pooled features have per-dimension scales that differ by an order of
magnitude (MiniLM's mean-pooled states: standard deviations from about 0.05 to 1, one dimension constant).
A linear model on them is fitted after standardising each dimension; the vote network trained by AdamW at
one learning rate is too, once its input is standardised (README, "Defaults and why"). The statistics are
buffers (saved with the weights) fitted once, before training, and never trained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MIN_STD = 1e-6  # a dimension whose training values vary less than this is centred, not scaled


class FeatureStandardizer(nn.Module):
    """``(x - mean) * scale`` over the last dimension; identity until ``fit`` is called.

    Args:
        dim: the feature width D.

    Inputs:
        (..., D) features, e.g. pooled (B, D) or tokens (B, T, D).

    Returns:
        The same shape, standardised with the fitted training statistics.
    """

    mean: Tensor
    scale: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        """Sets the statistics from (N, D) training features (N >= 1); a constant dimension gets scale 1."""
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0] or features.shape[0] == 0:
            raise ValueError(f"expected (N >= 1, {self.mean.shape[0]}) features, got {tuple(features.shape)}")
        values = features.double()
        std = values.std(dim=0, unbiased=False)  # (D,)
        scale = torch.where(std < MIN_STD, torch.ones_like(std), 1.0 / std.clamp_min(MIN_STD))
        self.mean.copy_(values.mean(dim=0).to(self.mean.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.dtype)) * self.scale.to(x.dtype)  # (..., D)
