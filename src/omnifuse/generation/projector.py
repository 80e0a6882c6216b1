"""Encoder features -> the language model's prefix: each input becomes K embeddings, projected from its
pooled vector (``linear``, ``mlp2x_gelu``) or read from its tokens by K learned queries (``resampler``)."""

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


class Resampler(nn.Module):
    """K learned queries cross-attending to an input's tokens (Perceiver resampler / Q-Former style), so
    the prefix length stays K whatever the number of tokens: (B, T, D) tokens -> (B, K, H).

    Args:
        in_dim: D, the encoder's token width. width: H, the LM's. queries: K.
    """

    def __init__(self, in_dim: int, width: int, queries: int) -> None:
        super().__init__()
        heads = next(h for h in (8, 4, 2, 1) if width % h == 0)
        self.keys = nn.Linear(in_dim, width)
        self.queries = nn.Parameter(torch.randn(queries, width) * 0.02)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.feed = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, tokens: Tensor, mask: Tensor | None) -> Tensor:
        """tokens (B, T, D), mask (B, T) bool (True: a real token) or None -> (B, K, H)."""
        keys = self.keys(tokens)  # (B, T, H)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # (B, K, H)
        padding = None
        if mask is not None:  # a row without any real token (an absent input) attends to all: no NaN
            padding = ~mask & mask.any(dim=1, keepdim=True)  # (B, T)
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=padding, need_weights=False)
        hidden = self.norm(attended + queries)
        return hidden + self.feed(hidden)  # (B, K, H)


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
        self.width, self.tokens, self.kind = width, tokens, kind
        self.projectors = nn.ModuleDict(
            {n: Resampler(input_dims[n], width, tokens) if kind == "resampler"
             else make_projector(kind, input_dims[n], width * tokens) for n in self.names}
        )
        self.output_dim = len(self.names) * tokens * width

    def prefix(self, features: dict[str, EncoderOutput],
               presence: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, P, H) prefix embeddings and (B, P) bool mask (False for an absent input), P = inputs * K."""
        parts, masks = [], []
        for name in self.names:
            pooled = features[name].pooled  # (B, D)
            if self.kind == "resampler":  # the encoder's tokens, or its pooled vector as one token
                tokens = features[name].tokens
                sequence = pooled[:, None, :] if tokens is None else tokens  # (B, T, D)
                mask = None if tokens is None else features[name].mask
                parts.append(self.projectors[name](sequence, mask))
            else:
                parts.append(self.projectors[name](pooled).view(pooled.shape[0], self.tokens, self.width))
            masks.append(presence[name].to(torch.bool)[:, None].expand(-1, self.tokens))  # (B, K)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        embeddings, _ = self.prefix(features, presence)
        return embeddings.flatten(1)  # (B, P * H)
