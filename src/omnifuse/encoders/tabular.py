"""The tabular encoder: one token per column (numeric or categorical), and an MLP over all of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, EncoderSpec, InputSpec


@dataclass
class TabularMLPOptions:
    """Options of the ``tabular_mlp`` encoder."""

    embed_dim: int = positive(16)  # size of each column's embedding
    hidden_dim: int = positive(64)  # MLP width = output_dim; column tokens are projected to it
    dropout: float = fraction(0.1)  # inside the MLP


class NumericTokens(nn.Module):
    """Numeric column c with standardised value x -> ``x * w_c + b_c``, or a learned embedding if missing.

    Inputs:
        x: (B, N) float; missing: (B, N) 1 where the cell is missing.

    Returns:
        (B, N, D).
    """

    def __init__(self, num_columns: int, embed_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_columns, embed_dim) * 0.1)  # (N, D)
        self.bias = nn.Parameter(torch.zeros(num_columns, embed_dim))  # (N, D)
        self.missing = nn.Parameter(torch.randn(num_columns, embed_dim) * 0.1)  # (N, D)

    def forward(self, x: Tensor, missing: Tensor) -> Tensor:
        tokens = x.unsqueeze(-1) * self.weight + self.bias  # (B, N, D)
        return torch.where(missing.bool().unsqueeze(-1), self.missing.expand_as(tokens), tokens)  # (B, N, D)


class CategoricalTokens(nn.Module):
    """Categorical column k with id i -> an embedding; one shared table, column k's ids shifted.

    Inputs:
        ids: (B, K) long, per-column ids.

    Returns:
        (B, K, D).
    """

    offsets: Tensor  # (K,) first id of each column in the shared table

    def __init__(self, cardinalities: list[int], embed_dim: int) -> None:
        super().__init__()
        starts = [sum(cardinalities[:k]) for k in range(len(cardinalities))]
        self.register_buffer("offsets", torch.tensor(starts, dtype=torch.long), persistent=False)  # (K,)
        self.table = nn.Embedding(sum(cardinalities), embed_dim)

    def forward(self, ids: Tensor) -> Tensor:
        return self.table(ids + self.offsets)  # (B, K, D)


class TabularMLPEncoder(Encoder):
    """Embeds every column as a token, then an MLP over the concatenated tokens.

    A numeric column c with standardised value x becomes ``x * w_c + b_c``, or a learned per-column
    "missing" embedding where the cell is missing; a categorical column becomes its category's
    embedding (as in the FT-Transformer feature tokenizer, https://arxiv.org/abs/2106.11959).

    Args:
        num_numeric: N, the numeric columns.
        cardinalities: vocabulary size of each of the K categorical columns.
        embed_dim: D, the column embedding size.
        hidden_dim: H, the MLP width and output_dim.
        dropout: inside the MLP.

    Inputs:
        numeric: (B, N) float; numeric_missing: (B, N) 1 where missing; categorical: (B, K) long.

    Returns:
        pooled (B, H), tokens (B, N+K, H) one per column, mask (B, N+K) all True.
    """

    def __init__(
        self,
        num_numeric: int,
        cardinalities: list[int],
        embed_dim: int = 16,
        hidden_dim: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        # Parameters exist only for column kinds that are present, so every parameter gets a gradient.
        self.numeric = NumericTokens(num_numeric, embed_dim) if num_numeric else None
        self.categorical = CategoricalTokens(cardinalities, embed_dim) if cardinalities else None
        self.project = nn.Linear(embed_dim, hidden_dim) if embed_dim != hidden_dim else nn.Identity()
        num_columns = num_numeric + len(cardinalities)
        self.mlp = nn.Sequential(
            nn.Linear(num_columns * hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
        )
        self.output_dim = hidden_dim

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        parts = []
        if self.numeric is not None:
            parts.append(self.numeric(inputs["numeric"], inputs["numeric_missing"]))  # (B, N, D)
        if self.categorical is not None:
            parts.append(self.categorical(inputs["categorical"]))  # (B, K, D)
        tokens = self.project(torch.cat(parts, dim=1))  # (B, N+K, H)
        pooled = self.mlp(tokens.flatten(1))  # (B, (N+K)*H) -> (B, H)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # (B, N+K)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)


def make_tabular_preprocessor(options: TabularMLPOptions, spec: InputSpec) -> Preprocessor:
    """An unfitted preprocessor for the input's numeric and categorical columns."""
    return TabularPreprocessor(dict(spec.columns))


def build_tabular_mlp(options: TabularMLPOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``tabular_mlp`` encoder, sized by the fitted preprocessor's columns and vocabularies.

    Raises:
        TypeError: not a TabularPreprocessor.
    """
    if not isinstance(preprocessor, TabularPreprocessor):
        raise TypeError(f"expected a TabularPreprocessor, got {type(preprocessor).__name__}")
    return TabularMLPEncoder(
        len(preprocessor.numeric),
        preprocessor.cardinalities(),
        options.embed_dim,
        options.hidden_dim,
        options.dropout,
    )


ENCODERS.add(
    "tabular_mlp",
    EncoderSpec(
        modality="tabular",
        options=TabularMLPOptions,
        make_preprocessor=make_tabular_preprocessor,
        build=build_tabular_mlp,
        summary="numeric and categorical columns: one embedding per column, then an MLP",
    ),
)
