"""Encoder features -> the language model's prefix: each input's pooled vector becomes K embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.base import Fusion


def make_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """``linear`` or ``mlp2x_gelu`` (LLaVA-1.5: Linear, GELU, Linear) from ``in_dim`` to ``out_dim``."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class PrefixProjection(Fusion):
    """One projector per input: (B, D_input) pooled -> (B, K, H) prefix embeddings, in sorted input order.

    It sits in MultimodalModel's fusion slot, so training, saving and the frozen-feature cache treat a
    generation model like any other; ``prefix`` is what the language model reads.

    Args:
        input_dims: {input: its encoder's output_dim}.
        width: the language model's embedding width H.
        tokens: K, prefix embeddings per input.
        kind: the projector (see ``make_projector``).
    """

    def __init__(self, input_dims: dict[str, int], width: int, tokens: int, kind: str) -> None:
        super().__init__()
        self.names = sorted(input_dims)
        self.width, self.tokens = width, tokens
        self.projectors = nn.ModuleDict(
            {n: make_projector(kind, input_dims[n], width * tokens) for n in self.names}
        )
        self.output_dim = len(self.names) * tokens * width

    def prefix(self, features: dict[str, EncoderOutput],
               presence: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, P, H) prefix embeddings and (B, P) bool mask (False for an absent input), P = inputs * K."""
        parts, masks = [], []
        for name in self.names:
            pooled = features[name].pooled  # (B, D)
            parts.append(self.projectors[name](pooled).view(pooled.shape[0], self.tokens, self.width))
            masks.append(presence[name].to(torch.bool)[:, None].expand(-1, self.tokens))  # (B, K)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        embeddings, _ = self.prefix(features, presence)
        return embeddings.flatten(1)  # (B, P * H)
