"""Robustness of a trained model: its score with one input missing, and with one input corrupted.

Missing: the input's presence flag is False for every row, the same path a missing cell takes, so every
fusion handles it (a model that never reads the input scores as it does with it).

Corrupted: every tensor of the input is changed according to its kind (``corrupt_tensor``):

- bool tensors and structure tensors (``mask``, ``attention_mask``, ``token_type_ids``, names ending in
  ``_mask`` or ``_missing``): unchanged; they say where the content is, they are not content.
- float tensors (log-mel frames, normalised pixels, standardised numbers): ``x + N(0, s^2)`` where ``s`` is
  the standard deviation of all the tensor's values in the batch (noise as strong as the signal's spread).
- uint8 tensors (raw pixels 0..255): ``x + N(0, 64^2)``, rounded and clipped to 0..255, uint8 again.
- other integer tensors (token and category ids): 30% of the real tokens, drawn at random, are replaced by
  ids drawn uniformly from ``[lo, hi]``, the smallest and largest real id in the batch. Real tokens are
  those where the input's ``attention_mask`` is non-zero, or the ids that are not 0 (0 pads and marks a
  missing category) when it has none. An input with an ``attention_mask`` is a sequence and gets one
  range for the batch; without one each column (dim 1, e.g. one categorical column) gets its own range,
  so a replaced id stays in that column's vocabulary.

Shapes and dtypes never change. The noise comes from a generator seeded by the batch's position and the
input's position in the sorted input names, so every model of a comparison sees the same corruption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from omnifuse.data.collate import Batch
from omnifuse.errors import DataError
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.tasks.base import Task

PIXEL_NOISE_STD = 64.0  # std of the noise added to uint8 pixels
TOKEN_REPLACE_FRACTION = 0.3  # share of real tokens replaced by random ids
STRUCTURE_TENSORS = ("mask", "attention_mask", "token_type_ids")  # left unchanged by corruption
STRUCTURE_SUFFIXES = ("_mask", "_missing")


def is_structure(name: str, tensor: Tensor) -> bool:
    """True for tensors that describe where the content is (masks, missing flags) rather than content."""
    return tensor.dtype == torch.bool or name in STRUCTURE_TENSORS or name.endswith(STRUCTURE_SUFFIXES)


def corrupt_float(tensor: Tensor, generator: torch.Generator) -> Tensor:
    """``tensor + N(0, s^2)`` with ``s`` the std of all its values (no change when they are constant)."""
    values = tensor.float()
    scale = values.std() if values.numel() > 1 else values.new_zeros(())
    noise = torch.randn(values.shape, generator=generator) * scale
    return (values + noise).to(tensor.dtype)


def corrupt_pixels(tensor: Tensor, generator: torch.Generator) -> Tensor:
    """uint8 pixels plus ``N(0, 64^2)``, rounded and clipped to 0..255."""
    noise = torch.randn(tensor.shape, generator=generator) * PIXEL_NOISE_STD
    return (tensor.float() + noise).round().clamp(0, 255).to(torch.uint8)


def corrupt_ids(
    ids: Tensor, generator: torch.Generator, real: Tensor | None = None, per_column: bool = False
) -> Tensor:
    """Replaces 30% of the real ids with random ids in the range of real ids seen in the batch.

    Args:
        ids: (B, ...) integer ids.
        generator: the noise source.
        real: bool mask of ``ids``' shape, True for real tokens; default ``ids != 0``.
        per_column: one id range per column (dim 1) instead of one for the whole batch.
    Returns:
        The ids with the same shape and dtype.
    """
    real = (ids != 0) if real is None else real.bool()
    if not bool(real.any()):
        return ids.clone()
    big = torch.iinfo(torch.int64).max
    if per_column and ids.dim() >= 2:
        flat = ids.reshape(ids.shape[0], ids.shape[1], -1).long()  # (B, K, R)
        mask = real.reshape(flat.shape)  # (B, K, R)
        lo = torch.where(mask, flat, big).amin(dim=(0, 2), keepdim=True)  # (1, K, 1)
        hi = torch.where(mask, flat, -big).amax(dim=(0, 2), keepdim=True)  # (1, K, 1)
        seen = mask.any(dim=2, keepdim=True).any(dim=0, keepdim=True)  # (1, K, 1) columns with a real id
        lo, hi = torch.where(seen, lo, 0), torch.where(seen, hi, 0)
        lo, hi = lo.expand_as(flat).reshape(ids.shape), hi.expand_as(flat).reshape(ids.shape)
    else:
        lo = ids.long()[real].min().expand(ids.shape)
        hi = ids.long()[real].max().expand(ids.shape)
    span = (hi - lo + 1).clamp(min=1)
    draws = (torch.rand(ids.shape, generator=generator) * span).long().clamp(max=span - 1) + lo
    replace = real & (torch.rand(ids.shape, generator=generator) < TOKEN_REPLACE_FRACTION)
    return torch.where(replace, draws, ids.long()).to(ids.dtype)


def corrupt_input(tensors: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
    """Every tensor of one input corrupted according to its kind (see the module docstring)."""
    attention = tensors.get("attention_mask")
    out: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        if is_structure(name, tensor):
            out[name] = tensor
        elif tensor.is_floating_point():
            out[name] = corrupt_float(tensor, generator)
        elif tensor.dtype == torch.uint8:
            out[name] = corrupt_pixels(tensor, generator)
        else:
            real = attention != 0 if attention is not None and attention.shape == tensor.shape else None
            out[name] = corrupt_ids(tensor, generator, real, per_column=attention is None)
    return out


@dataclass
class RobustnessLogits:
    """Logits of the test rows (N, C), clean and per input missing or corrupted, and the targets."""

    clean: Tensor
    missing: dict[str, Tensor]
    corrupted: dict[str, Tensor]
    targets: Tensor


@torch.inference_mode()
def _batch_variants(
    model: MultimodalModel, batch: Batch, names: list[str], seed: int
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """The encoders run once; fusion + head re-run per missing input, one encoder per corrupted input."""
    device = next(model.parameters()).device
    moved = batch.to(device)
    features = model.encode(moved.inputs)
    presence = {n: moved.presence[n] for n in model.encoders}
    clean = model.decide(moved.inputs, features, presence).float()  # (B, C)
    missing: dict[str, Tensor] = {}
    corrupted: dict[str, Tensor] = {}
    for i, name in enumerate(names):
        if name not in model.encoders:  # the model never reads this input
            missing[name] = corrupted[name] = clean.cpu()
            continue
        absent = {**presence, name: torch.zeros_like(presence[name])}
        missing[name] = model.decide(moved.inputs, features, absent).float().cpu()
        generator = torch.Generator().manual_seed(seed + i)
        noisy = {k: v.to(device) for k, v in corrupt_input(batch.inputs[name], generator).items()}
        changed = {**features, name: model.encode_input(name, noisy)}
        corrupted[name] = model.decide({**moved.inputs, name: noisy}, changed, presence).float().cpu()
    return clean.cpu(), missing, corrupted


def robustness_logits(
    model: MultimodalModel, batches: Sequence[Batch], names: Sequence[str], seed: int = 0
) -> RobustnessLogits:
    """Logits of every batch clean, with each of ``names`` missing, and with each corrupted.

    Args:
        model: the trained model; inputs it has no encoder for are ignored.
        batches: collated CPU batches with targets, in a fixed order.
        names: the inputs to take away or corrupt, one at a time (usually every input of the data).
        seed: base seed of the corruption noise; batch ``b`` and input ``i`` use ``seed + 1000 * b + i``.
    Raises:
        ValueError: no batches, or a batch without targets.
    """
    if not batches or any(b.target is None for b in batches):
        raise DataError("robustness needs at least one batch, each with targets (labelled rows)")
    with evaluating(model):
        parts = [_batch_variants(model, b, sorted(names), seed + 1000 * k) for k, b in enumerate(batches)]
    targets = torch.cat([b.target for b in batches if b.target is not None])
    return RobustnessLogits(
        clean=torch.cat([p[0] for p in parts]),
        missing={n: torch.cat([p[1][n] for p in parts]) for n in names},
        corrupted={n: torch.cat([p[2][n] for p in parts]) for n in names},
        targets=targets,
    )


def metric_value(task: Task, logits: Tensor, targets: Tensor, metric: str) -> float:
    """One metric of a set of logits; NaN where the task leaves it undefined."""
    value = task.metrics(logits, targets).get(metric)
    return float("nan") if value is None else float(value)


def robustness_scores(result: RobustnessLogits, task: Task, metric: str) -> dict[str, float]:
    """``{missing_<input>: score, corrupted_<input>: score}`` for every input, in ``metric``."""
    scores: dict[str, float] = {}
    for name in sorted(result.missing):
        scores[f"missing_{name}"] = metric_value(task, result.missing[name], result.targets, metric)
        scores[f"corrupted_{name}"] = metric_value(task, result.corrupted[name], result.targets, metric)
    return scores
