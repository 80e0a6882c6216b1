"""Frozen pretrained embeddings: the config's pretrained encoder, as built before any training, run in eval
mode over the model's own preprocessed rows; its pooled output is the feature vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from omnifuse.config.sections import ComponentConfig
from omnifuse.data.collate import Example, collate
from omnifuse.encoders.base import Encoder

PRETRAINED_ENCODERS = ("hf_text", "hf_image", "efficientnet_lite0", "hf_audio")
BATCH = 32


def is_pretrained(component: ComponentConfig) -> bool:
    """Whether an encoder starts from pretrained weights (a pretrained kind, or ``init_from`` a tower)."""
    if component.init_from is not None:
        return True
    return component.name in PRETRAINED_ENCODERS and component.options.get("pretrained", True) is not False


@torch.inference_mode()
def embed(encoder: Encoder, examples: Sequence[Example], name: str, device: torch.device,
          batch_size: int = BATCH) -> np.ndarray:
    """(N, D) float64 pooled outputs of ``encoder`` (eval mode, no gradients) on input ``name``."""
    encoder.eval().to(device)
    pooled = []
    for start in range(0, len(examples), batch_size):
        inputs = collate(list(examples[start : start + batch_size])).inputs[name]
        output = encoder({key: value.to(device) for key, value in inputs.items()})
        pooled.append(output.pooled.float().cpu().numpy())  # (B, D)
    return np.concatenate(pooled).astype(np.float64)
