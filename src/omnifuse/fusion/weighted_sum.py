"""Weighted-sum fusion: per-input projections mixed by learned softmax weights over present inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_positive, fusion_inputs, masked_softmax


@dataclass
class WeightedSumOptions:
    """Options of the ``weighted_sum`` fusion."""

    dim: int = positive(128)  # common width each input's pooled vector is projected to (the output width)


class WeightedSumFusion(Fusion):
    """``sum_i w_i Linear_i(x_i)`` with ``w = softmax(logits)`` renormalised over the row's present inputs.

    One learned scalar logit per input, shared by all rows; a row with no input present gives zeros.
    ``last_weights`` holds the (B, M) weights of the last forward pass (detached, sorted input order).

    Args:
        input_dims: {input name: pooled width}.
        dim: output width.
    """

    def __init__(self, input_dims: dict[str, int], dim: int = 128) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim) for n in self.input_names])
        self.logits = nn.Parameter(torch.zeros(len(self.input_names)))  # (M,) equal weights at start
        self.output_dim = dim
        self.last_weights: Tensor | None = None

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        pooled, present = fusion_inputs(self.input_names, features, presence)
        projected = torch.stack([p(x) for p, x in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, dim)
        scores = self.logits.unsqueeze(0).expand(present.shape[0], -1)  # (B, M)
        weights = masked_softmax(scores, present, dim=1)  # (B, M)
        self.last_weights = weights.detach()
        return (weights.unsqueeze(-1) * projected).sum(dim=1)  # (B, dim)


def build_weighted_sum(options: WeightedSumOptions, input_dims: dict[str, int]) -> WeightedSumFusion:
    """Builds a WeightedSumFusion after checking the options.

    Raises:
        OptionError: no inputs or a non-positive ``dim``.
    """
    if not input_dims:
        raise OptionError("fusion 'weighted_sum' needs at least one input; configure at least one column")
    check_positive(options.dim, "fusion.dim")
    return WeightedSumFusion(input_dims, options.dim)


FUSIONS.add(
    "weighted_sum",
    FusionSpec(
        options=WeightedSumOptions,
        build=build_weighted_sum,
        summary="project each input to `dim` and mix with learned softmax weights over the present inputs",
    ),
)
