"""Concatenation fusion: pooled vectors side by side plus one presence flag per input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, non_negative
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, fusion_inputs, make_activation


@dataclass
class ConcatOptions:
    """Options of the ``concat`` fusion."""

    proj_dim: int = non_negative(0)  # width of a Linear projection of the concatenation; 0: none
    activation: str = "gelu"  # activation after the projection (gelu, relu, silu, tanh, identity)
    dropout: float = fraction(0.0)  # dropout after the projection's activation (only with proj_dim > 0)


class ConcatFusion(Fusion):
    """Early/late fusion by concatenation (as TorchMultimodal ``ConcatFusionModule``).

    The output is ``[x_1 * p_1, ..., x_M * p_M, p_1, ..., p_M]`` in sorted input order, where ``p_i``
    is 1 if the row has input ``i`` and 0 otherwise, so that "all zeros" and "missing" are told apart.
    With ``proj_dim > 0`` a Linear -> activation -> dropout maps it to ``proj_dim``.

    Args:
        input_dims: {input name: pooled width}.
        proj_dim: projection width, 0 for none.
        activation: activation after the projection.
        dropout: dropout after the projection.
    """

    def __init__(
        self, input_dims: dict[str, int], proj_dim: int = 0, activation: str = "gelu", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        concat_dim = sum(input_dims.values()) + len(input_dims)
        self.proj: nn.Module = nn.Identity()
        if proj_dim > 0:
            self.proj = nn.Sequential(
                nn.Linear(concat_dim, proj_dim), make_activation(activation), nn.Dropout(dropout)
            )
        self.output_dim = proj_dim if proj_dim > 0 else concat_dim

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        pooled, present = fusion_inputs(self.input_names, features, presence)
        flags = present.to(pooled[0].dtype)  # (B, M)
        fused = torch.cat([*pooled, flags], dim=1)  # (B, sum D + M)
        return self.proj(fused)


def build_concat(options: ConcatOptions, input_dims: dict[str, int]) -> ConcatFusion:
    """Builds a ConcatFusion after checking the options.

    Raises:
        OptionError: no inputs, a negative ``proj_dim``, a bad dropout or an unknown activation.
    """
    if not input_dims:
        raise OptionError("fusion 'concat' needs at least one input; configure at least one column")
    if options.proj_dim < 0:
        raise OptionError(f"fusion.proj_dim must be >= 0, got {options.proj_dim!r}; use 0 for no projection")
    check_dropout(options.dropout, "fusion.dropout")
    make_activation(options.activation)
    return ConcatFusion(input_dims, options.proj_dim, options.activation, options.dropout)


FUSIONS.add(
    "concat",
    FusionSpec(
        options=ConcatOptions,
        build=build_concat,
        summary="concatenate pooled vectors (absent ones zeroed) and presence flags; optional projection",
    ),
)
