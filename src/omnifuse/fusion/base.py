"""The fusion contract and registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.registry import Registry


class Fusion(nn.Module):
    """Base class: fuses per-input features into one vector per row.

    Inputs:
        features: {input name: EncoderOutput}, iterated in sorted key order.
        presence: {input name: (B,) bool}, False where the row lacks that modality. Every fusion must
            give a finite output for a row whatever its presence pattern (even all False).
    Returns:
        (B, output_dim)
    """

    output_dim: int

    def forward(  # pragma: no cover - abstract
        self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]
    ) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class FusionSpec:
    """A registered fusion: its options dataclass and ``build(options, input_dims) -> Fusion``.

    ``input_dims`` maps each input name (sorted) to its encoder's ``output_dim``. ``num_inputs`` is the
    exact number of inputs the fusion takes (e.g. 2 for bilinear pooling), or None for any number.
    """

    options: type
    build: Callable[[Any, dict[str, int]], Fusion]
    summary: str
    num_inputs: int | None = None


FUSIONS: Registry[FusionSpec] = Registry("fusion")
