"""Frozen pretrained embeddings: the config's pretrained encoder, as built before any training, run in eval
mode over the model's own preprocessed rows; its pooled output is the feature vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from omnifuse.config.sections import ComponentConfig
from omnifuse.data.collate import Example
from omnifuse.encoders.base import Encoder
from omnifuse.training.batched_forward import pooled_outputs

PRETRAINED_ENCODERS = ("hf_text", "hf_image", "efficientnet_lite0", "hf_audio")
BATCH = 32


def is_pretrained(component: ComponentConfig) -> bool:
    """Whether an encoder starts from pretrained weights (a pretrained kind, or ``init_from`` a tower)."""
    if component.init_from is not None:
        return True
    return component.name in PRETRAINED_ENCODERS and component.options.get("pretrained", True) is not False


def embed(encoder: Encoder, examples: Sequence[Example], name: str, device: torch.device,
          batch_size: int = BATCH) -> np.ndarray:
    """(N, D) float64 pooled outputs of ``encoder`` (eval mode, no gradients) on input ``name``."""
    return pooled_outputs(encoder, examples, name, device, batch_size).numpy().astype(np.float64)
