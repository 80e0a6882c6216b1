"""Transformer fusion: one transformer over all inputs' tokens, read out at a learned CLS token (MMBT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, check_positive, fusion_inputs


@dataclass
class TransformerOptions:
    """Options of the ``transformer`` fusion."""

    dim: int = positive(128)  # width of the transformer (every token is projected to it) and of the output
    layers: int = positive(1)  # number of transformer encoder layers (pre-norm, GELU)
    heads: int = positive(4)  # attention heads; must divide `dim`
    ff_mult: int = positive(2)  # feed-forward width = ff_mult * dim
    dropout: float = fraction(0.1)  # dropout in attention and feed-forward blocks
    max_tokens: int = positive(64)  # per input: its pooled vector and its first max_tokens tokens
    positions: bool = True  # add learned position embeddings (index 0: the pooled vector, 1..: the tokens)


def token_sequences(
    names: Sequence[str],
    features: Mapping[str, EncoderOutput],
    presence: Mapping[str, Tensor],
    max_tokens: int,
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Each input's sequence ``[pooled, tokens[:max_tokens]]`` with padding and absent rows zeroed.

    The pooled vector leads every sequence (a per-input summary token, like BERT's [CLS]); an input
    with ``tokens=None`` is its pooled vector alone, and ``mask=None`` means every token is real.
    Tokens past ``max_tokens`` are dropped. Padding and absent rows are zeroed *before* any layer, so
    whatever an encoder put there (even NaN) reaches neither the output nor a gradient.

    Args:
        names: the input names the fusion was built for, sorted.
        features: {name: EncoderOutput}.
        presence: {name: (B,) bool}.
        max_tokens: how many tokens to keep per input (besides the pooled vector).
    Returns:
        ([(B, 1 + T_n, D_n) per name], [(B, 1 + T_n) bool real-and-present per name], (B, M) presence).
    Raises:
        OptionError: ``features`` or ``presence`` does not hold exactly the inputs in ``names``.
    """
    pooled, present = fusion_inputs(names, features, presence)
    sequences, valid = [], []
    for i, name in enumerate(names):
        out = features[name]
        row_present = present[:, i : i + 1]  # (B, 1)
        if out.tokens is None:
            sequences.append(pooled[i].unsqueeze(1))  # (B, 1, D)
            valid.append(row_present)
            continue
        tokens = out.tokens[:, :max_tokens]  # (B, T, D)
        real = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # (B, T)
        if out.mask is not None:
            real = out.mask[:, :max_tokens].bool()
        real = real & row_present  # (B, T)
        tokens = tokens.masked_fill(~real.unsqueeze(-1), 0.0)  # (B, T, D)
        sequences.append(torch.cat([pooled[i].unsqueeze(1), tokens], dim=1))  # (B, 1 + T, D)
        valid.append(torch.cat([row_present, real], dim=1))  # (B, 1 + T)
    return sequences, valid, present


def check_heads(dim: int, heads: int) -> None:
    """Raises OptionError unless ``heads`` is positive and divides ``dim``."""
    check_positive(heads, "fusion.heads")
    if dim % heads:
        raise OptionError(
            f"fusion.dim ({dim}) must be divisible by fusion.heads ({heads}); "
            "change one, e.g. dim: 128 with heads: 4"
        )


class TransformerFusion(Fusion):
    """Token-level fusion: a transformer over all inputs' tokens, output = the CLS token's final state.

    Follows MMBT (Kiela et al. 2019, https://arxiv.org/abs/1909.02950): every input's sequence
    (its pooled vector, then up to ``max_tokens`` tokens; see ``token_sequences``) is projected to ``dim``,
    plus a learned modality-type embedding per input and optional learned positions; a learned CLS
    token is prepended and ``layers`` pre-norm ``nn.TransformerEncoderLayer``s run over the lot. The key
    padding mask hides padding and every token of an absent input, so an absent input contributes no
    keys at all; CLS is never masked, so a row with nothing present still attends (to CLS alone).
    The last layer is evaluated for the CLS query only (the output reads nothing else), which is both
    cheaper and gives ``last_weights``: (B, M) the CLS token's last-layer attention mass on each input
    (averaged over heads, detached, sorted input order; the rest of each row's mass is on CLS itself;
    in training mode they include the attention dropout).

    Args:
        input_dims: {input name: token / pooled width}.
        dim, layers, heads, ff_mult, dropout, max_tokens, positions: see ``TransformerOptions``.
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
        positions: bool = True,
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.max_tokens = max_tokens
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim) for n in self.input_names])
        self.type_embedding = nn.Parameter(0.02 * torch.randn(len(self.input_names), dim))  # (M, dim)
        self.position_embedding = nn.Parameter(0.02 * torch.randn(max_tokens + 1, dim)) if positions else None
        self.cls = nn.Parameter(0.02 * torch.randn(dim))  # (dim,)
        self.layers = nn.ModuleList(
            [
                nn.TransformerEncoderLayer(
                    dim, heads, ff_mult * dim, dropout, activation="gelu", batch_first=True, norm_first=True
                )
                for _ in range(layers)
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.output_dim = dim
        self.last_weights: Tensor | None = None

    def _embed(self, sequences: list[Tensor]) -> Tensor:
        """Projection + type (+ position) embedding per input, concatenated: (B, L, dim)."""
        embedded = []
        for i, (proj, seq) in enumerate(zip(self.proj, sequences, strict=True)):
            hidden = proj(seq) + self.type_embedding[i]  # (B, 1 + T_i, dim)
            if self.position_embedding is not None:
                hidden = hidden + self.position_embedding[: seq.shape[1]]
            embedded.append(hidden)
        return torch.cat(embedded, dim=1)  # (B, L, dim)

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        sequences, valid, _ = token_sequences(self.input_names, features, presence, self.max_tokens)
        tokens = self._embed(sequences)  # (B, L, dim)
        batch = tokens.shape[0]
        cls = self.cls.expand(batch, 1, -1)  # (B, 1, dim)
        x = torch.cat([cls, tokens], dim=1)  # (B, 1 + L, dim)
        cls_key = torch.ones(batch, 1, dtype=torch.bool, device=x.device)  # (B, 1)
        padding = ~torch.cat([cls_key, *valid], dim=1)  # (B, 1 + L) True = ignored key
        for layer in self.layers[:-1]:
            x = layer(x, src_key_padding_mask=padding)  # (B, 1 + L, dim)
        cls_out, weights = self._last_layer_cls(x, padding)  # (B, dim), (B, 1 + L)
        lengths = [seq.shape[1] for seq in sequences]
        per_input = torch.split(weights[:, 1:], lengths, dim=1)  # M x (B, 1 + T_i)
        self.last_weights = torch.stack([w.sum(dim=1) for w in per_input], dim=1).detach()  # (B, M)
        return self.norm(cls_out)

    def _last_layer_cls(self, x: Tensor, padding: Tensor) -> tuple[Tensor, Tensor]:
        """The last encoder layer for the CLS query only: its new state (B, dim) and attention (B, 1 + L).

        Same maths as ``nn.TransformerEncoderLayer`` with ``norm_first=True`` restricted to row 0,
        through the layer's own submodules, with ``need_weights`` for the CLS attention.
        """
        layer = self.layers[-1]
        assert isinstance(layer, nn.TransformerEncoderLayer)
        normed = layer.norm1(x)  # (B, 1 + L, dim)
        attended, weights = layer.self_attn(
            normed[:, :1], normed, normed, key_padding_mask=padding, need_weights=True
        )  # (B, 1, dim), (B, 1, 1 + L)
        assert weights is not None
        cls = x[:, :1] + layer.dropout1(attended)  # (B, 1, dim)
        hidden = layer.dropout(layer.activation(layer.linear1(layer.norm2(cls))))  # (B, 1, ff)
        cls = cls + layer.dropout2(layer.linear2(hidden))  # (B, 1, dim)
        return cls.squeeze(1), weights.squeeze(1)


def check_token_fusion_options(name: str, options: Any, input_dims: dict[str, int]) -> None:
    """The checks shared by the token-level fusions (``transformer``, ``cross_attention``).

    Raises:
        OptionError: no inputs, a non-positive ``dim`` / ``layers`` / ``ff_mult`` / ``max_tokens``,
            ``heads`` not dividing ``dim`` or a bad dropout.
    """
    if not input_dims:
        raise OptionError(f"fusion {name!r} needs at least one input; configure at least one column")
    for value, where in (
        (options.dim, "fusion.dim"),
        (options.layers, "fusion.layers"),
        (options.ff_mult, "fusion.ff_mult"),
        (options.max_tokens, "fusion.max_tokens"),
    ):
        check_positive(value, where)
    check_heads(options.dim, options.heads)
    check_dropout(options.dropout, "fusion.dropout")


def build_transformer(options: TransformerOptions, input_dims: dict[str, int]) -> TransformerFusion:
    """Builds a TransformerFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim`` / ``layers`` / ``heads`` / ``ff_mult`` /
            ``max_tokens``, ``heads`` not dividing ``dim`` or a bad dropout.
    """
    check_token_fusion_options("transformer", options, input_dims)
    return TransformerFusion(
        input_dims,
        dim=options.dim,
        layers=options.layers,
        heads=options.heads,
        ff_mult=options.ff_mult,
        dropout=options.dropout,
        max_tokens=options.max_tokens,
        positions=options.positions,
    )


FUSIONS.add(
    "transformer",
    FusionSpec(
        options=TransformerOptions,
        build=build_transformer,
        summary="MMBT-style transformer over all inputs' tokens, read out at a learned CLS token",
    ),
)
