"""Shared blocks: the MLP, activations by name, a masked softmax and the helpers every fusion uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import OptionError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (see ``ACTIVATIONS``).

    Raises:
        OptionError: the name is unknown; the message lists the choices.
    """
    if name not in ACTIVATIONS:
        choices = ", ".join(sorted(ACTIVATIONS))
        raise OptionError(f"unknown activation {name!r}; use one of: {choices}")
    return ACTIVATIONS[name]()


def check_dropout(dropout: float, where: str) -> None:
    """Raises OptionError unless ``0 <= dropout < 1``; ``where`` names the option (e.g. "fusion.dropout")."""
    if not 0.0 <= dropout < 1.0:
        raise OptionError(f"{where} must be in [0, 1), got {dropout!r}; set it to e.g. 0.1 (0: none)")


def check_positive(value: int, where: str) -> None:
    """Raises OptionError unless ``value >= 1``; ``where`` names the option (e.g. "fusion.dim")."""
    if value < 1:
        raise OptionError(f"{where} must be a positive integer, got {value!r}; set it to e.g. 128")


class MLP(nn.Module):
    """Linear -> [LayerNorm] -> activation -> dropout for each hidden layer, then a final Linear.

    Args:
        in_dim: input width.
        hidden_dims: widths of the hidden layers; empty gives a single Linear.
        out_dim: output width.
        dropout: dropout probability after each hidden activation.
        activation: a name from ``ACTIVATIONS``.
        norm: add a LayerNorm after each hidden Linear.
    Inputs:
        x: (..., in_dim)
    Returns:
        (..., out_dim)
    Raises:
        OptionError: a width is not positive, dropout is outside [0, 1) or the activation is unknown.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        norm: bool = False,
    ) -> None:
        super().__init__()
        check_positive(in_dim, "MLP in_dim")
        check_positive(out_dim, "MLP out_dim")
        for width in hidden_dims:
            check_positive(width, "MLP hidden width")
        check_dropout(dropout, "MLP dropout")
        layers: list[nn.Module] = []
        width_in = in_dim
        for width in hidden_dims:
            layers.append(nn.Linear(width_in, width))
            if norm:
                layers.append(nn.LayerNorm(width))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width_in = width
        layers.append(nn.Linear(width_in, out_dim))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the positions where ``mask`` is True; rows with nothing unmasked give all zeros.

    Masked positions get weight 0 and no gradient. Unlike ``softmax(scores.masked_fill(~mask, -inf))``
    an all-masked row gives zeros instead of NaN, in the forward and the backward pass.

    Args:
        scores: any shape, floating point.
        mask: bool, broadcastable to ``scores``; True where the position takes part.
        dim: the dimension to normalise over.
    Returns:
        weights shaped like ``scores``: non-negative, summing to 1 over ``dim`` where any position is
        unmasked, 0 elsewhere.
    """
    mask = mask.bool()
    # The dtype's minimum rather than -inf keeps softmax finite on all-masked rows.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(filled, dim=dim) * mask.to(scores.dtype)
    total = weights.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
    return weights / total


def fusion_inputs(
    names: Sequence[str], features: Mapping[str, EncoderOutput], presence: Mapping[str, Tensor]
) -> tuple[list[Tensor], Tensor]:
    """Pooled vectors in the order of ``names`` with absent rows zeroed, and the presence matrix.

    Zeroing absent rows *before* any layer keeps whatever an encoder emits for a missing value
    (even NaN) out of the output and out of every gradient.

    Args:
        names: the input names the fusion was built for, sorted.
        features: {name: EncoderOutput}; ``pooled`` is (B, D_name).
        presence: {name: (B,) bool}, False where the row lacks that input.
    Returns:
        ([(B, D_name) per name], (B, M) bool presence in the order of ``names``).
    Raises:
        OptionError: ``features`` or ``presence`` does not hold exactly the inputs in ``names``.
    """
    for what, given in (("features", features), ("presence", presence)):
        if sorted(given) != sorted(names):
            raise OptionError(
                f"fusion was built for inputs {sorted(names)} but {what} has {sorted(given)}; "
                "pass one entry per input the fusion was built with"
            )
    present = torch.stack([presence[n].bool() for n in names], dim=1)  # (B, M)
    pooled = [
        features[n].pooled.masked_fill(~present[:, i : i + 1], 0.0)  # (B, D_n)
        for i, n in enumerate(names)
    ]
    return pooled, present
