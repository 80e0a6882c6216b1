"""A MoCo-style FIFO queue of recent embeddings, used as extra negatives (https://arxiv.org/abs/1911.05722)."""

from __future__ import annotations

import torch
from torch import Tensor


class EmbeddingQueue:
    """The last ``size`` embeddings (and their label ids or masking keys) of one tower, oldest first.

    With small batches, each row sees only B - 1 negatives; the queue adds up to ``size`` embeddings of
    earlier batches. They come from slightly older weights, which is why MoCo keeps the queue short
    relative to how fast the encoder changes.

    Args:
        size: capacity in rows; 0 keeps nothing.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.embeddings: Tensor | None = None  # (Q, D)
        self.labels: Tensor | None = None  # (Q,) label ids or (Q, G) keys

    def __len__(self) -> int:
        return 0 if self.embeddings is None else len(self.embeddings)

    def push(self, embeddings: Tensor, labels: Tensor) -> None:
        """Appends a batch (B, D) with its (B,) label ids or (B, G) keys; drops the oldest beyond ``size``."""
        if self.size <= 0:
            return
        new, new_labels = embeddings.detach(), labels.detach().long()
        if self.embeddings is not None and self.labels is not None:
            new = torch.cat([self.embeddings, new.to(self.embeddings.device)])
            new_labels = torch.cat([self.labels, new_labels.to(self.labels.device)])
        self.embeddings, self.labels = new[-self.size :], new_labels[-self.size :]

    def clear(self) -> None:
        """Empties the queue."""
        self.embeddings = self.labels = None
