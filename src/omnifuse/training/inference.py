"""Running a model over a DataLoader without gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from omnifuse.data.collate import Batch


@torch.no_grad()
def run_model(
    model: nn.Module, batches: Iterable[Batch], device: torch.device, embed: bool = False
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Returns (logits or embeddings (N, C), targets (N, ...) or None, row indices (N,)) on the CPU."""
    was_training = model.training
    model.eval()
    outputs, targets, indices = [], [], []
    forward: Any = model.embed if embed else model  # MultimodalModel.embed or forward
    for batch in batches:
        batch = batch.to(device)
        outputs.append(forward(batch.inputs, batch.presence).float().cpu())
        if batch.target is not None:
            targets.append(batch.target.cpu())
        indices.append(batch.index)
    model.train(was_training)
    target = torch.cat(targets) if targets else None
    return torch.cat(outputs), target, torch.cat(indices)
