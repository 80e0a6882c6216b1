"""Gated fusion: the Gated Multimodal Unit generalised to any number of inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, check_positive, fusion_inputs, masked_softmax

GATES = ("softmax", "sigmoid")


@dataclass
class GatedOptions:
    """Options of the ``gated`` fusion."""

    dim: int = positive(128)  # width of each input's tanh projection h_i (the output width)
    gate: str = "softmax"  # how gate scores become weights: softmax, or sigmoid renormalised (both per row)
    dropout: float = fraction(0.0)  # dropout on the fused vector


def sigmoid_gate(scores: Tensor, present: Tensor) -> Tensor:
    """Sigmoid gates, zero on absent inputs and renormalised to sum to 1 over the present ones.

    Args:
        scores: (B, M) gate scores.
        present: (B, M) bool.
    Returns:
        (B, M) weights; rows with nothing present are all zero (with zero gradient, never NaN).
    """
    mask = present.to(scores.dtype)
    gates = torch.sigmoid(scores.masked_fill(~present, 0.0)) * mask  # (B, M)
    total = gates.sum(dim=1, keepdim=True)  # (B, 1)
    # Dividing all-absent rows by 1 instead of 0 keeps them at 0 in both passes.
    return gates / torch.where(total > 0, total, torch.ones_like(total))


class GatedFusion(Fusion):
    """Gated Multimodal Unit over M inputs: ``h_i = tanh(W_i x_i)``, fused ``= sum_i z_i h_i``.

    Arevalo et al. 2017, https://arxiv.org/abs/1702.01992. The paper's two-input gate
    ``z = sigmoid(W_z [x_1; x_2])`` becomes one score per input, ``s = W_z [x_1 p_1; ...; x_M p_M; p]``
    from the concatenation of all inputs (absent ones zeroed) and the presence flags ``p``, turned into
    weights ``z`` by a softmax (or per-input sigmoids renormalised to sum to 1) over the row's present
    inputs. Absent inputs get weight 0; a row with none present gives zeros. ``last_weights`` holds the
    (B, M) gates of the last forward pass (detached, sorted input order).

    Args:
        input_dims: {input name: pooled width}.
        dim: output width.
        gate: "softmax" or "sigmoid".
        dropout: dropout on the fused vector.
    """

    def __init__(
        self, input_dims: dict[str, int], dim: int = 128, gate: str = "softmax", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim) for n in self.input_names])
        num_inputs = len(self.input_names)
        self.gate_scores = nn.Linear(sum(input_dims.values()) + num_inputs, num_inputs)
        self.gate = gate
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim
        self.last_weights: Tensor | None = None

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        pooled, present = fusion_inputs(self.input_names, features, presence)
        hidden = [torch.tanh(p(x)) for p, x in zip(self.proj, pooled, strict=True)]  # [(B, dim)] * M
        stacked = torch.stack(hidden, dim=1)  # (B, M, dim)
        gate_in = torch.cat([*pooled, present.to(pooled[0].dtype)], dim=1)  # (B, sum D + M)
        scores = self.gate_scores(gate_in)  # (B, M)
        if self.gate == "sigmoid":
            weights = sigmoid_gate(scores, present)
        else:
            weights = masked_softmax(scores, present, dim=1)  # (B, M)
        self.last_weights = weights.detach()
        fused = (weights.unsqueeze(-1) * stacked).sum(dim=1)  # (B, dim)
        return self.dropout(fused)


def build_gated(options: GatedOptions, input_dims: dict[str, int]) -> GatedFusion:
    """Builds a GatedFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim``, an unknown ``gate`` or a bad dropout.
    """
    if not input_dims:
        raise OptionError("fusion 'gated' needs at least one input; configure at least one column")
    check_positive(options.dim, "fusion.dim")
    if options.gate not in GATES:
        raise OptionError(f"fusion.gate must be one of {', '.join(GATES)}, got {options.gate!r}")
    check_dropout(options.dropout, "fusion.dropout")
    return GatedFusion(input_dims, options.dim, options.gate, options.dropout)


FUSIONS.add(
    "gated",
    FusionSpec(
        options=GatedOptions,
        build=build_gated,
        summary="gated multimodal unit: tanh projections mixed by input-dependent gates over present inputs",
    ),
)
