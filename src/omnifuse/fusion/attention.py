"""Attention fusion: per-row additive attention over the present inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, check_positive, fusion_inputs, masked_softmax


@dataclass
class AttentionOptions:
    """Options of the ``attention`` fusion."""

    dim: int = positive(128)  # common width each input is projected to (the output width)
    attn_dim: int = positive(64)  # hidden width of the scoring network w^T tanh(W h + b)
    dropout: float = fraction(0.0)  # dropout on the fused vector


class AttentionFusion(Fusion):
    """Additive attention over inputs: ``a = softmax_i(w^T tanh(W h_i + b))``, fused ``= sum_i a_i h_i``.

    ``h_i = Linear_i(x_i)``; the softmax runs over the inputs present in the row, so absent inputs get
    weight 0 and a row with none present gives zeros. Scoring follows Bahdanau et al.,
    https://arxiv.org/abs/1409.0473, applied across modalities instead of time steps.
    ``last_weights`` holds the (B, M) weights of the last forward pass (detached, sorted input order).

    Args:
        input_dims: {input name: pooled width}.
        dim: output width.
        attn_dim: hidden width of the scorer.
        dropout: dropout on the fused vector.
    """

    def __init__(
        self, input_dims: dict[str, int], dim: int = 128, attn_dim: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim) for n in self.input_names])
        self.score_hidden = nn.Linear(dim, attn_dim)
        self.score_out = nn.Linear(attn_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim
        self.last_weights: Tensor | None = None

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        pooled, present = fusion_inputs(self.input_names, features, presence)
        hidden = torch.stack([p(x) for p, x in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, dim)
        scores = self.score_out(torch.tanh(self.score_hidden(hidden))).squeeze(-1)  # (B, M)
        weights = masked_softmax(scores, present, dim=1)  # (B, M)
        self.last_weights = weights.detach()
        fused = (weights.unsqueeze(-1) * hidden).sum(dim=1)  # (B, dim)
        return self.dropout(fused)


def build_attention(options: AttentionOptions, input_dims: dict[str, int]) -> AttentionFusion:
    """Builds an AttentionFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim`` / ``attn_dim`` or a bad dropout.
    """
    if not input_dims:
        raise OptionError("fusion 'attention' needs at least one input; configure at least one column")
    check_positive(options.dim, "fusion.dim")
    check_positive(options.attn_dim, "fusion.attn_dim")
    check_dropout(options.dropout, "fusion.dropout")
    return AttentionFusion(input_dims, options.dim, options.attn_dim, options.dropout)


FUSIONS.add(
    "attention",
    FusionSpec(
        options=AttentionOptions,
        build=build_attention,
        summary="per-row additive attention over the present inputs' projections (weights in last_weights)",
    ),
)
