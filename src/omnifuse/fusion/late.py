"""Late fusion: a small network per input casts a vote; votes are mixed by weights over present inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, non_negative, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import MLP, check_dropout, check_positive, fusion_inputs, masked_softmax

COMBINES = ("weighted", "mean")


@dataclass
class LateOptions:
    """Options of the ``late`` fusion."""

    dim: int = positive(64)  # width of each input's vote (the output width)
    hidden_dim: int = non_negative(64)  # hidden width of each input's vote MLP; 0: one linear layer
    combine: Literal["weighted", "mean"] = "weighted"  # learned softmax weights, or plain mean
    dropout: float = fraction(0.1)  # dropout after the vote MLP's hidden layer (unused when hidden_dim is 0)


class LateFusion(Fusion):
    """Late fusion / ensemble: ``sum_i w_i vote_i(x_i)`` over the inputs present in the row.

    ``vote_i`` is a per-input MLP (pooled width -> ``hidden_dim`` -> ``dim``, or one Linear when
    ``hidden_dim`` is 0). With ``combine="weighted"`` the weights are ``softmax(logits)`` of one learned
    scalar per input, renormalised over the row's present inputs; with ``"mean"`` every present input
    weighs the same. A row with nothing present gives zeros. ``last_weights`` holds the (B, M) weights
    of the last forward pass (detached, sorted input order).

    The task head on top is shared by all inputs and the weights sum to 1 over the present inputs.
    So with ``head.hidden_dim: 0`` (the head is one Linear, ``W z + b``) and the head's dropout off
    (eval mode), the model's logits are exactly ``sum_i w_i (W vote_i + b)``: the weighted mean of
    per-input classifiers, i.e. true late fusion of decisions. With a hidden layer in the head it is
    late fusion of per-input representations, which the shared head then reads jointly.

    Args:
        input_dims: {input name: pooled width}.
        dim: vote / output width.
        hidden_dim: hidden width of each vote MLP (0: linear votes).
        combine: "weighted" or "mean".
        dropout: dropout after each vote MLP's hidden layer.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        dim: int = 64,
        hidden_dim: int = 64,
        combine: str = "weighted",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        hidden = [hidden_dim] if hidden_dim > 0 else []
        self.votes = nn.ModuleList([MLP(input_dims[n], hidden, dim, dropout) for n in self.input_names])
        # "mean" has no logits at all: a parameter that never gets a gradient would only confuse.
        self.logits = nn.Parameter(torch.zeros(len(self.input_names))) if combine == "weighted" else None
        self.output_dim = dim
        self.last_weights: Tensor | None = None

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        pooled, present = fusion_inputs(self.input_names, features, presence)
        votes = [vote(x) for vote, x in zip(self.votes, pooled, strict=True)]  # M x (B, dim)
        stacked = torch.stack(votes, dim=1)  # (B, M, dim)
        scores = torch.zeros(present.shape, dtype=stacked.dtype, device=stacked.device)  # (B, M)
        if self.logits is not None:
            scores = scores + self.logits  # (B, M)
        weights = masked_softmax(scores, present, dim=1)  # (B, M)
        self.last_weights = weights.detach()
        return (weights.unsqueeze(-1) * stacked).sum(dim=1)  # (B, dim)


def build_late(options: LateOptions, input_dims: dict[str, int]) -> LateFusion:
    """Builds a LateFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim``, a negative ``hidden_dim``, an unknown ``combine``
            or a bad dropout.
    """
    if not input_dims:
        raise OptionError("fusion 'late' needs at least one input; configure at least one column")
    check_positive(options.dim, "fusion.dim")
    if options.hidden_dim < 0:
        raise OptionError(
            f"fusion.hidden_dim must be >= 0, got {options.hidden_dim!r}; use 0 for linear votes or e.g. 64"
        )
    if options.combine not in COMBINES:
        raise OptionError(f"fusion.combine must be one of {', '.join(COMBINES)}, got {options.combine!r}")
    check_dropout(options.dropout, "fusion.dropout")
    return LateFusion(input_dims, options.dim, options.hidden_dim, options.combine, options.dropout)


FUSIONS.add(
    "late",
    FusionSpec(
        options=LateOptions,
        build=build_late,
        summary="late fusion: a vote MLP per input, mixed by learned softmax weights over the present inputs",
    ),
)
