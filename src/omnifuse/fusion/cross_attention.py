"""Cross-attention fusion: each input's tokens attend to the other present inputs' tokens (ViLBERT style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.encoders.base import EncoderOutput, masked_mean
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.fusion.transformer import check_token_fusion_options, token_sequences


@dataclass
class CrossAttentionOptions:
    """Options of the ``cross_attention`` fusion."""

    dim: int = positive(128)  # width every token is projected to (the output width)
    layers: int = positive(1)  # rounds of co-attention (every input attends to the others once per round)
    heads: int = positive(4)  # attention heads; must divide `dim`
    ff_mult: int = positive(2)  # feed-forward width = ff_mult * dim
    dropout: float = fraction(0.1)  # dropout on the attention weights and the residual branches
    max_tokens: int = positive(64)  # per input: its pooled vector and its first max_tokens tokens


class CoAttentionBlock(nn.Module):
    """One stream's round: ``h = LN(h + CrossAttn(h, others))``, then ``h = LN(h + FF(h))`` (post-norm).

    Rows with no key to attend to (no other input present) skip the cross-attention: their residual
    branch is zero, so ``h`` goes on to the feed-forward unchanged but for the LayerNorm.

    Args:
        dim, heads, ff_mult, dropout: widths and dropout, see ``CrossAttentionOptions``.
        attend: False for a fusion with a single input (nothing to attend to; no attention weights).
    Inputs:
        query: (B, T, dim) this input's tokens.
        keys: (B, S, dim) the other inputs' tokens, concatenated, or None when ``attend`` is False.
        key_valid: (B, S) bool, True where a key is real and its input present, or None.
    Returns:
        (B, T, dim)
    """

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, attend: bool = True) -> None:
        super().__init__()
        self.attention = (
            nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True) if attend else None
        )
        self.norm1 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, keys: Tensor | None, key_valid: Tensor | None) -> Tensor:
        update = torch.zeros_like(query)  # (B, T, dim)
        if self.attention is not None and keys is not None and key_valid is not None:
            update = self._cross(query, keys, key_valid)
        h = self.norm1(query + self.dropout(update))  # (B, T, dim)
        return self.norm2(h + self.dropout(self.ff(h)))  # (B, T, dim)

    def _cross(self, query: Tensor, keys: Tensor, key_valid: Tensor) -> Tensor:
        """Attention of ``query`` over the valid keys; zeros on rows without any valid key."""
        assert self.attention is not None
        has_key = key_valid.any(dim=1)  # (B,)
        # A row with every key masked would give NaN (softmax over nothing) in the forward and the
        # backward pass; unmask its first key for the computation and throw the result away.
        first = torch.zeros_like(key_valid)
        first[:, 0] = True
        padding = ~(key_valid | (first & ~has_key[:, None]))  # (B, S) True = ignored key
        attended, _ = self.attention(query, keys, keys, key_padding_mask=padding, need_weights=False)
        return torch.where(has_key[:, None, None], attended, torch.zeros_like(attended))  # (B, T, dim)


class CrossAttentionFusion(Fusion):
    """Co-attention fusion in the style of ViLBERT (Lu et al. 2019, https://arxiv.org/abs/1908.02265).

    Every input's sequence (its pooled vector, then up to ``max_tokens`` tokens; see
    ``omnifuse.fusion.transformer.token_sequences``) is projected to ``dim`` plus a learned
    modality-type embedding. Each of ``layers`` rounds updates every input's stream with its own
    ``CoAttentionBlock``: queries are its tokens, keys and values the concatenated tokens of all
    *other* inputs, with padding and absent inputs masked out (all streams read the previous
    round's states). A row where no other input is present skips the cross-attention (its stream
    only goes through the LayerNorms and the feed-forward), so it is finite and equals what that
    input alone gives. Finally each stream is mean-pooled over its real tokens and the per-input
    vectors are averaged over the row's present inputs (a row with nothing present gives zeros).
    With a single input there is nothing to attend to: the blocks are feed-forward only.

    Args:
        input_dims: {input name: token / pooled width}.
        dim, layers, heads, ff_mult, dropout, max_tokens: see ``CrossAttentionOptions``.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        dim: int = 128,
        layers: int = 1,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        max_tokens: int = 64,
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.max_tokens = max_tokens
        count = len(self.input_names)
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim) for n in self.input_names])
        self.type_embedding = nn.Parameter(0.02 * torch.randn(count, dim))  # (M, dim)
        self.blocks = nn.ModuleList(
            [
                nn.ModuleList(
                    [CoAttentionBlock(dim, heads, ff_mult, dropout, count > 1) for _ in range(count)]
                )
                for _ in range(layers)
            ]
        )  # blocks[round][input]
        self.output_dim = dim

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        sequences, valid, present = token_sequences(self.input_names, features, presence, self.max_tokens)
        streams = [
            proj(seq) + self.type_embedding[i]  # (B, 1 + T_i, dim)
            for i, (proj, seq) in enumerate(zip(self.proj, sequences, strict=True))
        ]
        for round_blocks in self.blocks:
            assert isinstance(round_blocks, nn.ModuleList)
            streams = [block(streams[i], *_others(streams, valid, i)) for i, block in enumerate(round_blocks)]
        means = [masked_mean(s, v) for s, v in zip(streams, valid, strict=True)]  # M x (B, dim)
        pooled = torch.stack(means, dim=1)  # (B, M, dim)
        return masked_mean(pooled, present)  # (B, dim): the mean over the present modalities


def _others(streams: list[Tensor], valid: list[Tensor], skip: int) -> tuple[Tensor | None, Tensor | None]:
    """Tokens (B, S, dim) and validity (B, S) of every stream but ``skip``, concatenated; None if none."""
    keep = [j for j in range(len(streams)) if j != skip]
    if not keep:
        return None, None
    return torch.cat([streams[j] for j in keep], dim=1), torch.cat([valid[j] for j in keep], dim=1)



def build_cross_attention(options: CrossAttentionOptions, input_dims: dict[str, int]) -> CrossAttentionFusion:
    """Builds a CrossAttentionFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim`` / ``layers`` / ``heads`` / ``ff_mult`` /
            ``max_tokens``, ``heads`` not dividing ``dim`` or a bad dropout.
    """
    check_token_fusion_options("cross_attention", options, input_dims)
    return CrossAttentionFusion(
        input_dims,
        dim=options.dim,
        layers=options.layers,
        heads=options.heads,
        ff_mult=options.ff_mult,
        dropout=options.dropout,
        max_tokens=options.max_tokens,
    )


FUSIONS.add(
    "cross_attention",
    FusionSpec(
        options=CrossAttentionOptions,
        build=build_cross_attention,
        summary="ViLBERT-style co-attention: each input's tokens attend to the other present inputs' tokens",
    ),
)
