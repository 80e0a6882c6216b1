"""Tensor fusion (outer product of all inputs) and its low-rank factorisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, non_negative, positive
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.layers.mlp import check_dropout, check_positive, fusion_inputs


@dataclass
class TensorOptions:
    """Options of the ``tensor`` fusion."""

    dim_per_input: int = positive(16)  # width each input is projected to before the outer product
    proj_dim: int = non_negative(0)  # width of a Linear projection of the flat product; 0: none
    dropout: float = fraction(0.0)  # dropout on the flattened product
    max_size: int = positive(100000)  # largest product size prod(dim_per_input + 1): a guard against blow-up


@dataclass
class LowRankTensorOptions:
    """Options of the ``low_rank_tensor`` fusion."""

    rank: int = positive(4)  # number of rank-1 terms R in the factorised fusion weight
    dim: int = positive(128)  # output width
    dim_per_input: int = non_negative(0)  # width each input is projected to first; 0: the encoder's width


def append_one(hidden: Tensor) -> Tensor:
    """``[h; 1]``: appends a constant 1 so a product over inputs keeps every lower-order term.

    Args:
        hidden: (B, D)
    Returns:
        (B, D + 1)
    """
    return torch.cat([hidden, hidden.new_ones(hidden.shape[0], 1)], dim=1)


def masked_projections(
    proj: nn.ModuleList, names: list[str], features: dict[str, EncoderOutput], presence: dict[str, Tensor]
) -> list[Tensor]:
    """``[h_i; 1]`` per input with ``h_i = proj_i(x_i)`` and ``h_i = 0`` on rows lacking input ``i``.

    Returns:
        [(B, D_i + 1) per input, in the order of ``names``].
    """
    pooled, present = fusion_inputs(names, features, presence)
    mask = present.to(pooled[0].dtype)  # (B, M)
    # Zeroing after the projection (not only before) removes the bias too: an absent h_i is exactly 0.
    return [append_one(p(x) * mask[:, i : i + 1]) for i, (p, x) in enumerate(zip(proj, pooled, strict=True))]


class TensorFusion(Fusion):
    """Tensor Fusion Network: the flattened outer product of ``[h_i; 1]`` over all inputs.

    Zadeh et al. 2017, https://arxiv.org/abs/1707.07250. ``h_i = Linear_i(x_i)`` of width
    ``dim_per_input``; the appended 1 keeps the unimodal and lower-order cross terms in the product, so a
    row lacking input ``i`` (``h_i = 0``) keeps every term of the other inputs. The output width is
    ``prod_i (dim_per_input + 1)``, or ``proj_dim`` with a Linear projection after it.

    Args:
        input_dims: {input name: pooled width}.
        dim_per_input: width of each ``h_i``.
        proj_dim: projection width, 0 for none.
        dropout: dropout on the flattened product.
    """

    def __init__(
        self, input_dims: dict[str, int], dim_per_input: int = 16, proj_dim: int = 0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        self.proj = nn.ModuleList([nn.Linear(input_dims[n], dim_per_input) for n in self.input_names])
        self.dropout = nn.Dropout(dropout)
        size = (dim_per_input + 1) ** len(self.input_names)
        self.out_proj: nn.Module = nn.Linear(size, proj_dim) if proj_dim > 0 else nn.Identity()
        self.output_dim = proj_dim if proj_dim > 0 else size

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        augmented = masked_projections(self.proj, self.input_names, features, presence)
        product = augmented[0]  # (B, D_1 + 1)
        for z in augmented[1:]:
            outer = product.unsqueeze(2) * z.unsqueeze(1)  # (B, P, D_i + 1)
            product = outer.reshape(outer.shape[0], -1)  # (B, P * (D_i + 1))
        return self.out_proj(self.dropout(product))


def check_tensor_size(dim_per_input: int, num_inputs: int, max_size: int) -> None:
    """Raises OptionError when ``(dim_per_input + 1) ** num_inputs`` exceeds ``max_size``."""
    size = (dim_per_input + 1) ** num_inputs
    if size <= max_size:
        return
    fitting = math.floor(max_size ** (1 / num_inputs)) - 1
    while (fitting + 2) ** num_inputs <= max_size:  # guards against float rounding down
        fitting += 1
    raise OptionError(
        f"fusion 'tensor' with {num_inputs} inputs and dim_per_input={dim_per_input} makes an outer product "
        f"of ({dim_per_input} + 1)^{num_inputs} = {size} values, above fusion.max_size={max_size}; "
        f"lower fusion.dim_per_input (at most {fitting} fits), raise fusion.max_size, "
        "or use fusion 'low_rank_tensor'"
    )


def build_tensor(options: TensorOptions, input_dims: dict[str, int]) -> TensorFusion:
    """Builds a TensorFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``dim_per_input`` / ``max_size``, a negative ``proj_dim``,
            a bad dropout, or a product larger than ``max_size``.
    """
    if not input_dims:
        raise OptionError("fusion 'tensor' needs at least one input; configure at least one column")
    check_positive(options.dim_per_input, "fusion.dim_per_input")
    check_positive(options.max_size, "fusion.max_size")
    if options.proj_dim < 0:
        raise OptionError(f"fusion.proj_dim must be >= 0, got {options.proj_dim!r}; use 0 for no projection")
    check_dropout(options.dropout, "fusion.dropout")
    check_tensor_size(options.dim_per_input, len(input_dims), options.max_size)
    return TensorFusion(input_dims, options.dim_per_input, options.proj_dim, options.dropout)


class LowRankTensorFusion(Fusion):
    """Low-rank Multimodal Fusion: ``sum_r prod_i (W_i^(r) [h_i; 1]) + b``, a factorised tensor fusion.

    Liu et al. 2018, https://arxiv.org/abs/1806.00064. Equals a tensor fusion followed by a Linear whose
    weight is the rank-R tensor ``sum_r W_1^(r) o ... o W_M^(r)``, without building the product.
    ``h_i = x_i`` (or ``Linear_i(x_i)`` with ``dim_per_input > 0``) and ``h_i = 0`` on rows lacking input
    ``i``, so its factor contributes only its learned last row ``W_i^(r)[-1]``.

    Args:
        input_dims: {input name: pooled width}.
        rank: number of rank-1 terms R.
        dim: output width.
        dim_per_input: projection width of each input, 0 for none.
    """

    def __init__(
        self, input_dims: dict[str, int], rank: int = 4, dim: int = 128, dim_per_input: int = 0
    ) -> None:
        super().__init__()
        self.input_names = sorted(input_dims)
        widths = [dim_per_input if dim_per_input > 0 else input_dims[n] for n in self.input_names]
        self.proj = nn.ModuleList(
            [
                nn.Linear(input_dims[n], dim_per_input) if dim_per_input > 0 else nn.Identity()
                for n in self.input_names
            ]
        )
        # std 1/sqrt(D + 1) keeps each factor's output near unit variance, so the product neither
        # explodes nor vanishes with the number of inputs.
        factors = [torch.randn(rank, w + 1, dim) / math.sqrt(w + 1) for w in widths]  # [(R, D_i + 1, dim)]
        self.factors = nn.ParameterList([nn.Parameter(f) for f in factors])
        self.bias = nn.Parameter(torch.zeros(dim))
        self.output_dim = dim

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        augmented = masked_projections(self.proj, self.input_names, features, presence)
        product: Tensor | None = None
        for z, factor in zip(augmented, self.factors, strict=True):
            term = torch.einsum("bd,rdo->bro", z, factor)  # (B, R, dim)
            product = term if product is None else product * term
        assert product is not None  # at least one input, checked at build time
        return product.sum(dim=1) + self.bias  # (B, dim)


def build_low_rank_tensor(options: LowRankTensorOptions, input_dims: dict[str, int]) -> LowRankTensorFusion:
    """Builds a LowRankTensorFusion after checking the options.

    Raises:
        OptionError: no inputs, a non-positive ``rank`` / ``dim`` or a negative ``dim_per_input``.
    """
    if not input_dims:
        raise OptionError("fusion 'low_rank_tensor' needs at least one input; configure at least one column")
    check_positive(options.rank, "fusion.rank")
    check_positive(options.dim, "fusion.dim")
    if options.dim_per_input < 0:
        raise OptionError(
            f"fusion.dim_per_input must be >= 0, got {options.dim_per_input!r}; use 0 for the encoder width"
        )
    return LowRankTensorFusion(input_dims, options.rank, options.dim, options.dim_per_input)


FUSIONS.add(
    "tensor",
    FusionSpec(
        options=TensorOptions,
        build=build_tensor,
        summary="tensor fusion network: flattened outer product of the inputs' [h; 1] projections",
    ),
)
FUSIONS.add(
    "low_rank_tensor",
    FusionSpec(
        options=LowRankTensorOptions,
        build=build_low_rank_tensor,
        summary="low-rank multimodal fusion: rank-R factorised tensor fusion, output `dim`",
    ),
)
