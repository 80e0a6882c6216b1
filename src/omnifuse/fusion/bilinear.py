"""Bilinear fusion of two inputs: Multi-modal Factorized Bilinear pooling (MFB)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, check_positive, fusion_inputs

SQRT_EPS = 1e-6  # keeps the signed square root's gradient finite at 0 (at most 1 / sqrt(eps))
NORM_EPS = 1e-12  # keeps the L2 normalisation of an all-zero vector finite


@dataclass
class BilinearOptions:
    """Options of the ``bilinear`` fusion (exactly two inputs)."""

    dim: int = positive(128)  # output width o
    factor: int = positive(4)  # k: both inputs are projected to k * dim, then sum-pooled over windows of k
    dropout: float = fraction(0.1)  # dropout on the elementwise product, before pooling


def signed_sqrt(x: Tensor) -> Tensor:
    """Power normalisation ``sign(x) sqrt(|x|)``, smoothed at 0.

    Returns ``x / sqrt(|x| + eps)``: odd, increasing, within ``sqrt(eps)`` of ``sign(x) sqrt(|x|)``, with a
    positive gradient everywhere (at most ``1 / sqrt(eps)``, at 0) instead of an infinite one at 0.
    """
    return x * torch.rsqrt(x.abs() + SQRT_EPS)


def l2_normalise(x: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm; an all-zero row stays zero (finite gradient).

    Args:
        x: (B, D)
    Returns:
        (B, D)
    """
    return x / torch.sqrt((x * x).sum(dim=1, keepdim=True) + NORM_EPS)


class BilinearFusion(Fusion):
    """MFB: ``z = SumPool_k(U^T x_a * V^T x_b)``, then signed square root and L2 normalisation.

    Yu et al. 2017, https://arxiv.org/abs/1708.01471. ``U^T x_a + u`` and ``V^T x_b + v`` are Linear
    projections to ``k * dim``; their elementwise product, after dropout, is summed over consecutive
    windows of ``k`` to give ``dim`` values. Because the projections have biases, the product holds the
    bilinear term plus a linear term of each input (``v * U^T x_a``, ``u * V^T x_b``) and a constant.

    Missing inputs: a row lacking one input has no bilinear term, so the absent input's projection is
    replaced by its learned bias (the projection of a zero input), which leaves a learned linear
    projection of the present input (``(U^T x_a + u) * v``, pooled and normalised like full rows; the
    absent input's features never enter). Shared parameters rather than a separate fallback layer are
    used so that full rows train them too: a layer used only by incomplete rows would get no gradient
    from complete data. A row lacking both inputs gives zeros.

    Args:
        input_dims: {input name: pooled width}, exactly two inputs.
        dim: output width.
        factor: k.
        dropout: dropout on the product.
    """

    def __init__(
        self, input_dims: dict[str, int], dim: int = 128, factor: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        assert len(self.input_names) == 2, "checked in build_bilinear"
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], factor * dim) for n in self.input_names])
        self.dropout = nn.Dropout(dropout)
        self.factor = factor
        self.output_dim = dim

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        # fusion_inputs zeroes absent rows, so an absent input's projection is exactly its bias.
        pooled, present = fusion_inputs(self.input_names, features, presence)
        left, right = (p(x) for p, x in zip(self.proj, pooled, strict=True))  # (B, k * dim) each
        product = self.dropout(left * right)  # (B, k * dim)
        pooled_product = product.view(-1, self.output_dim, self.factor).sum(dim=2)  # (B, dim)
        fused = l2_normalise(signed_sqrt(pooled_product))  # (B, dim)
        any_present = present.any(dim=1, keepdim=True).to(fused.dtype)  # (B, 1)
        return fused * any_present


def build_bilinear(options: BilinearOptions, input_dims: dict[str, int]) -> BilinearFusion:
    """Builds a BilinearFusion after checking the options.

    Raises:
        OptionError: not exactly two inputs, a non-positive ``dim`` / ``factor`` or a bad dropout.
    """
    if len(input_dims) != 2:
        raise OptionError(
            f"fusion 'bilinear' takes exactly 2 inputs, got {len(input_dims)}: {sorted(input_dims)}; "
            "choose two columns, or use fusion 'tensor' or 'low_rank_tensor' for more"
        )
    check_positive(options.dim, "fusion.dim")
    check_positive(options.factor, "fusion.factor")
    check_dropout(options.dropout, "fusion.dropout")
    return BilinearFusion(input_dims, options.dim, options.factor, options.dropout)


FUSIONS.add(
    "bilinear",
    FusionSpec(
        options=BilinearOptions,
        build=build_bilinear,
        summary="MFB factorized bilinear pooling of exactly two inputs, power + L2 normalised",
        num_inputs=2,
    ),
)
