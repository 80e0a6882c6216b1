"""Training-time augmentation of preprocessed batches: the registry, the per-input pipeline, seeding.

Rows are preprocessed once before training (uint8 pixels, log-mel frames), so augmentation acts on the
collated tensors of each batch, right before the forward pass: nothing is decoded again, it runs on the
training device, and it is off at validation, evaluation and prediction. Every transform draws its random
numbers from one ``torch.Generator`` that the Trainer reseeds at every epoch, so a run (and a resumed run)
is reproducible with ``training.seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from omnifuse.errors import ConfigError
from omnifuse.registry import Registry

# the tensors each media type's preprocessor gives, which its transforms read
MODALITY_READS: dict[str, tuple[str, ...]] = {"image": ("pixels",), "audio": ("mel", "mask")}

Inputs = dict[str, Tensor]  # one model input's tensors, e.g. {"pixels": (B, C, H, W)} or {"mel", "mask"}
Transform = Callable[[Inputs, torch.Generator], Inputs]


@dataclass(frozen=True)
class AugmentSpec:
    """A registered transform.

    Attributes:
        reads: the tensor names it needs in an input, e.g. ("pixels",) or ("mel", "mask").
        options: the dataclass of its options (documented per field, all with defaults).
        build: options -> the transform, a callable (inputs, generator) -> inputs.
        summary: one line for ``omnifuse list`` and the README.
    """

    reads: tuple[str, ...]
    options: type
    build: Callable[[Any], Transform]
    summary: str


AUGMENTS: Registry[AugmentSpec] = Registry("augmentation")


class Pipeline:
    """The transforms of one input, applied in order to a training batch's tensors.

    Args:
        column: the column, for messages.
        names: the transforms' registered names.
        specs: their registry entries (what tensors each reads).
        transforms: the built transforms, in the order they run.
    """

    def __init__(self, column: str, names: list[str], specs: list[AugmentSpec],
                 transforms: list[Transform]) -> None:
        self.column, self.names, self.specs, self.transforms = column, names, specs, transforms

    def __call__(self, inputs: Inputs, generator: torch.Generator) -> Inputs:
        """The augmented tensors.

        Raises:
            ConfigError: the column's encoder does not give the tensors a transform reads (e.g. spec_augment
                on a waveform encoder).
        """
        for name, spec, transform in zip(self.names, self.specs, self.transforms, strict=True):
            missing = [key for key in spec.reads if key not in inputs]
            if missing:
                raise ConfigError([f"columns.{self.column}.augment.{name}: reads {', '.join(spec.reads)}, "
                                   f"but this column's encoder gives {', '.join(inputs)}; remove {name} or "
                                   "use augment: none for this column"])
            inputs = transform(inputs, generator)
        return inputs


def augment_batch(
    inputs: dict[str, Inputs], pipelines: dict[str, Pipeline], generator: torch.Generator
) -> dict[str, Inputs]:
    """A batch's inputs with each input that has a pipeline augmented (the others as they are)."""
    if not pipelines:
        return inputs
    return {name: (pipelines[name](t, generator) if name in pipelines else t) for name, t in inputs.items()}


def uniform(
    generator: torch.Generator, size: int, low: float, high: float, device: torch.device
) -> Tensor:
    """(size,) floats in [low, high), drawn on the CPU from ``generator`` (reproducible on any device)."""
    return (torch.rand(size, generator=generator) * (high - low) + low).to(device)


def chance(generator: torch.Generator, size: int, p: float, device: torch.device) -> Tensor:
    """(size,) bools, each True with probability ``p``."""
    return (torch.rand(size, generator=generator) < p).to(device)
