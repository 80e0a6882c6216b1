"""A MoCo-style FIFO queue of recent embeddings, used as extra negatives (https://arxiv.org/abs/1911.05722).

Under DDP every rank pushes the rows of every rank (gathered, in rank order), as MoCo does, so all ranks hold
the same queue; it is saved in the training checkpoint, so a resumed run does not start with it empty.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from omnifuse.training.distributed import check_peers


def gather_rows(rows: Tensor) -> Tensor:
    """(sum of B_r, ...) the rows of every rank, in rank order (their batch sizes may differ); ``rows`` itself
    when no process group with several ranks is running. Detached: no gradient flows through."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return rows
    check_peers()  # a rank that failed before this gather stops every rank here
    world = dist.get_world_size()
    size = torch.tensor([rows.shape[0]], device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(int(s) for s in sizes))
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    padded[: rows.shape[0]] = rows.detach()
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(n)] for part, n in zip(parts, sizes, strict=True)])


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
            new = torch.cat([self.embeddings.to(new.device), new])
            new_labels = torch.cat([self.labels.to(new_labels.device), new_labels])
        self.embeddings, self.labels = new[-self.size :], new_labels[-self.size :]

    def to(self, device: torch.device | str) -> EmbeddingQueue:
        """Moves the queued rows to ``device`` (a queue restored from a checkpoint starts on the CPU)."""
        if self.embeddings is not None and self.labels is not None:
            self.embeddings, self.labels = self.embeddings.to(device), self.labels.to(device)
        return self

    def clear(self) -> None:
        """Empties the queue."""
        self.embeddings = self.labels = None

    def state_dict(self) -> dict[str, Tensor]:
        """For the training checkpoint: {"embeddings": (Q, D), "labels": (Q,) or (Q, G)} on the CPU; {} when
        empty."""
        if self.embeddings is None or self.labels is None:
            return {}
        return {"embeddings": self.embeddings.detach().cpu(), "labels": self.labels.detach().cpu()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restores what ``state_dict`` wrote (the newest ``size`` rows of it), on the CPU until ``to``."""
        if not state or self.size <= 0:
            self.clear()
            return
        self.embeddings = state["embeddings"][-self.size :]
        self.labels = state["labels"].long()[-self.size :]
