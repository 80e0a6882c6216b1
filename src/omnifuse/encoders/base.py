"""The encoder contract: EncoderOutput, the Encoder base class and the EncoderSpec registry entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.registry import Registry


class EncoderOutput(NamedTuple):
    """What every encoder returns.

    Attributes:
        pooled: (B, D) one vector per row; always present.
        tokens: (B, T, D) a sequence (text tokens, image patches, audio frames) or None.
        mask: (B, T) bool, True where ``tokens`` is a real position, or None.
    """

    pooled: Tensor
    tokens: Tensor | None = None
    mask: Tensor | None = None


class Encoder(nn.Module):
    """Base class: ``forward(inputs) -> EncoderOutput`` with ``pooled`` of width ``output_dim``.

    ``inputs`` is the dict of batched tensors the matching Preprocessor made for one model input
    (after collate: each tensor has the batch as dim 0).
    """

    output_dim: int
    # width of ``linear_features``; 0: the encoder has none (the linear read-out skips its input)
    linear_dim: int = 0
    linear_sparse: bool = False  # its linear features are sparse non-negative rows (TF-IDF)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def linear_features(self, inputs: dict[str, Tensor]) -> Tensor:
        """(B, linear_dim) fixed summary features a linear model separates well (e.g. MFCC statistics),
        which the linear read-out (``omnifuse.readout``) is fitted on; only where ``linear_dim > 0``."""
        raise NotImplementedError(f"{type(self).__name__} has no linear features (linear_dim is 0)")

    def save_assets(self, folder: Path) -> None:
        """Writes what is needed to rebuild this encoder without the network (e.g. a HF config.json)."""


def use_channels_last(module: nn.Module, on: bool) -> None:
    """Puts ``module``'s 4-d weights in channels-last (NHWC) memory format when ``on``: the same values in
    another layout, in which oneDNN's CPU convolutions run faster (bench/README: a training step of
    ``small_cnn``, ``mel_cnn`` and the EfficientNet took 0.62 to 0.81 of the contiguous time).

    Its ``state_dict`` still gives contiguous tensors, so that it saves with safetensors as any other.
    """
    if on:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing in the stubs
        module.register_state_dict_post_hook(_contiguous_state)


def _contiguous_state(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """State-dict hook: this module's channels-last tensors as contiguous copies (safetensors needs them)."""
    for key, value in list(state.items()):
        if key.startswith(prefix) and isinstance(value, Tensor) and not value.is_contiguous():
            state[key] = value.contiguous()


def as_channels_last(x: Tensor, on: bool) -> Tensor:
    """(B, C, H, W) in channels-last memory format when ``on`` (the values are unchanged)."""
    return x.contiguous(memory_format=torch.channels_last) if on else x


@dataclass(frozen=True)
class InputSpec:
    """One model input: a media column, or the group of tabular columns.

    Attributes:
        name: the column name, or "tabular" for the numeric + categorical group.
        modality: "text", "image", "audio", "video" or "tabular".
        columns: the table columns it reads, with their types ("numeric", "categorical", ...).
    """

    name: str
    modality: str
    columns: Mapping[str, str]


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: which modality it reads, its options and how to build it.

    Attributes:
        modality: the input modality it accepts.
        options: a dataclass of this encoder's options (documented per field, all with defaults).
        make_preprocessor: (options, input) -> an unfitted Preprocessor for this encoder.
        build: (options, fitted preprocessor, assets) -> Encoder. ``assets`` is None when training
            starts (load pretrained weights from the hub name / folder in the options) and the folder
            written by ``Encoder.save_assets`` when a saved model is loaded (build the architecture
            only; the weights come from model.safetensors).
        summary: one line for ``omnifuse list``/the README.
        augment: the training-time augmentation that ``augment: auto`` gives this encoder's column
            ({transform name: options}; see ``omnifuse.augment``): on for encoders trained from scratch,
            empty for pretrained ones.
        freeze_epochs: the ``freeze_epochs`` that ``omnifuse init-config`` writes for this encoder: 0 for
            encoders trained from scratch; -1 (a probe on frozen, cached features) for pretrained ones, whose
            fine-tuning at the shared learning rate lost to logistic regression on their own frozen
            features (README, "Defaults and why").
        lr_mult: the ``lr_mult`` that init-config writes: 1.0 from scratch; small for pretrained weights, so
            that unfreezing them (``freeze_epochs`` >= 0) fine-tunes them gently instead of wiping them.
    """

    modality: str
    options: type
    make_preprocessor: Callable[[Any, InputSpec], Preprocessor]
    build: Callable[[Any, Preprocessor, Path | None], Encoder]
    summary: str
    augment: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    freeze_epochs: int = 0
    lr_mult: float = 1.0


ENCODERS: Registry[EncoderSpec] = Registry("encoder")

# What init-config writes for the packaged pretrained encoders: a probe on frozen features (cached, seconds
# per epoch on a CPU) and, once a user unfreezes them, lr 0.002 x 0.05 = 1e-4 (README, "Defaults and why").
PRETRAINED_FREEZE_EPOCHS = -1
PRETRAINED_LR_MULT = 0.05


def recommended_schedule(name: str, options: Mapping[str, Any]) -> tuple[int, float] | None:
    """The ``freeze_epochs`` and ``lr_mult`` a column encoder gets when its config leaves them out.

    Its registry entry's values, except where its options say it trains: random weights
    (``pretrained: false``) train from scratch (0, 1.0); LoRA adapters (``lora_r`` > 0) train from the
    start at the entry's ``lr_mult``. None for a name that is not registered (the config check reports it).
    """
    if name not in ENCODERS:
        return None
    spec = ENCODERS.get(name)
    if options.get("pretrained", True) is False:
        return 0, 1.0
    if options.get("lora_r", 0):
        return 0, spec.lr_mult
    return spec.freeze_epochs, spec.lr_mult


def masked_mean(tokens: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over real positions: tokens (B, T, D), mask (B, T) -> (B, D); all-padding rows give 0."""
    if mask is None:
        return tokens.mean(dim=1)
    weights = mask.to(tokens.dtype).unsqueeze(-1)  # (B, T, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def freeze(module: nn.Module, frozen: bool = True) -> None:
    """Sets requires_grad on every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(not frozen)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


def pick_device_dtype(reference: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a module's first parameter (float32 on CPU when it has none)."""
    for param in reference.parameters():
        return param.device, param.dtype
    return torch.device("cpu"), torch.float32
