"""Running a model, or one of its encoders, over batches of prepared rows without gradients."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from omnifuse.data.collate import Batch, Example, batches
from omnifuse.layers.modes import evaluating


@torch.inference_mode()
def run_model(
    model: nn.Module, batches: Iterable[Batch], device: torch.device, embed: bool = False
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Returns (logits or embeddings (N, C), targets (N, ...) or None, row indices (N,)) on the CPU; a
    model in training mode runs in eval mode (its modes restored after, also on error)."""
    # walking every submodule costs ~0.1 ms: a model already in eval mode (predicting) skips it
    mode = evaluating(model) if model.training else nullcontext()
    outputs, targets, indices = [], [], []
    forward: Any = model.embed if embed else model  # MultimodalModel.embed or forward
    reads = getattr(model, "reads_targets", False) and not embed  # GenerationModel: teacher forcing
    with mode:
        for batch in batches:
            batch = batch.to(device)
            extra = (batch.target,) if reads else ()
            outputs.append(forward(batch.inputs, batch.presence, *extra).float().cpu())
            if batch.target is not None:
                targets.append(batch.target.cpu())
            indices.append(batch.index)
    target = _cat(targets) if targets else None
    return _cat(outputs), target, _cat(indices)


def _cat(tensors: list[Tensor]) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


@torch.inference_mode()
def pooled_outputs(encoder: nn.Module, examples: Sequence[Example], name: str, device: torch.device | str,
                   batch_size: int) -> Tensor:
    """(N, D) float32 pooled outputs of ``encoder`` on input ``name`` of the rows, on the CPU; the encoder
    runs in eval mode (restored after) on ``device``."""
    outputs = []
    with evaluating(encoder.to(device)):
        for batch in batches(examples, batch_size):
            inputs = {k: v.to(device) for k, v in batch.inputs[name].items()}
            outputs.append(encoder(inputs).pooled.float().cpu())  # (B, D)
    return _cat(outputs)
