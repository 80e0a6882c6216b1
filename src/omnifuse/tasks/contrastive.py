"""Contrastive pretraining as a task: label ids for masking, the pairwise loss and retrieval metrics."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from omnifuse.contrastive.losses import clip_loss, siglip_loss
from omnifuse.contrastive.model import ContrastiveOutput
from omnifuse.contrastive.queue import EmbeddingQueue, gather_rows
from omnifuse.errors import DataError
from omnifuse.tasks.base import Task, is_missing, plain_label

NO_LABEL = -1
NOT_PREDICTIVE = (
    "this is a contrastive (embedding) model: it has no classes to predict; use "
    "predictor.embed(rows, column=...), omnifuse.zero_shot(...) or `omnifuse index` / `omnifuse search`"
)


def label_id(label: Any) -> int:
    """A stable non-negative id of a label's text form (the same in every run), or -1 when missing."""
    if is_missing(label):
        return NO_LABEL
    digest = hashlib.blake2b(str(plain_label(label)).encode("utf-8"), digest_size=7).digest()
    return int.from_bytes(digest, "big")


class ContrastiveTask(Task):
    """Aligns one embedding per column: the model outputs packed embeddings (see ``ProjectionFusion``).

    Targets are label ids (-1: no label); rows sharing a label are not negatives of each other, nor
    (``mask_duplicates``) rows with identical content in either column of a pair: in templated tables
    many rows share a text (or a sound), and a model cannot tell such rows apart, so counting them as
    negatives only adds noise. With more than two columns, the loss sums the pairwise losses and the
    metrics average over the pairs.

    Args:
        columns: the towers' columns (sorted).
        embed_dim: the shared embedding size.
        loss: "clip" (symmetric InfoNCE) or "siglip" (pairwise sigmoid).
        queue_size: rows of each tower's queue of recent embeddings (extra negatives); 0: none.
        has_labels: whether the training table had labels (for class-level metrics).
        mask_duplicates: rows with identical content in a tower column are not each other's negatives
            (needs the content ids that ``ContrastiveModel`` packs into its outputs).
    """

    name = "contrastive"

    def __init__(
        self, columns: Sequence[str], embed_dim: int, loss: Literal["clip", "siglip"] = "clip",
        queue_size: int = 0, has_labels: bool = False, mask_duplicates: bool = True,
    ) -> None:
        self.columns, self.embed_dim, self.loss_name = sorted(columns), embed_dim, loss
        self.queue_size, self.has_labels, self.mask_duplicates = queue_size, has_labels, mask_duplicates
        self.queues = {name: EmbeddingQueue(queue_size) for name in self.columns}

    def fit(self, labels: Sequence[Any]) -> None:
        """Notes whether there are labels at all; any labels (or none) are fine."""
        self.has_labels = any(not is_missing(v) for v in labels)

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        """Every label is usable (a missing one just masks nothing)."""
        return []

    def encode(self, label: Any) -> Tensor:
        """The label id as a long scalar (-1 when missing)."""
        return torch.tensor(label_id(label), dtype=torch.long)

    @property
    def output_dim(self) -> int:
        return len(self.columns) * self.embed_dim + 2

    def pairs(self) -> list[tuple[str, str]]:
        """Every pair of columns, in sorted order."""
        return list(itertools.combinations(self.columns, 2))

    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Summed pairwise loss of packed outputs (B, K*D + 2 [+ K content ids]) with label ids (B,).

        Training outputs (those that carry gradients) use the queues as extra negatives and are then
        pushed onto them; evaluation outputs neither use nor change the queues.
        """
        out = ContrastiveOutput.unpack(logits, self.columns, self.embed_dim)
        embeddings, scale, bias = out.embeddings, out.logit_scale, out.bias
        keys = self.negative_keys(out, targets)  # (B, 1 + K) or None
        training = logits.requires_grad and self.queue_size > 0
        terms: dict[str, Tensor] = {}
        for name in self.columns if training else []:
            self.queues[name].to(embeddings[name].device)  # restored from a checkpoint: on the CPU
        for a, b in self.pairs():
            extra = {n: self.queues[n].embeddings if training else None for n in (a, b)}
            pick = [0, 1 + self.columns.index(a), 1 + self.columns.index(b)]  # label, a's id, b's id
            labels = None if keys is None else keys[:, pick]  # (B, 3)
            queued = self.queues[a].labels
            extra_labels = queued[:, pick] if training and keys is not None and queued is not None else None
            args = (labels, extra[a], extra[b], extra_labels)
            terms[f"{a}<->{b}"] = (
                clip_loss(embeddings[a], embeddings[b], scale, *args)
                if self.loss_name == "clip"
                else siglip_loss(embeddings[a], embeddings[b], scale, bias, *args)
            )
        if training:
            keyed = gather_rows(targets if keys is None else keys)  # every rank's rows (DDP)
            for name in self.columns:
                self.queues[name].push(gather_rows(embeddings[name]), keyed)
        return {"loss": torch.stack(list(terms.values())).sum(), **terms}

    def negative_keys(self, out: ContrastiveOutput, targets: Tensor) -> Tensor | None:
        """(B, 1 + K) keys that mask negatives (see ``negatives_mask``): the label id (when the training
        table had labels), then each column's content id (``mask_duplicates``); -1 where unused; None
        when nothing is masked."""
        fingerprints = out.content_ids if self.mask_duplicates else None
        if not self.has_labels and fingerprints is None:
            return None
        none = targets.new_full((len(targets),), NO_LABEL).long()  # (B,)
        label = targets.long() if self.has_labels else none
        ids = [none if fingerprints is None else fingerprints[n].to(label.device) for n in self.columns]
        return torch.stack([label, *ids], dim=1)  # (B, 1 + K)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Not defined for embeddings.

        Raises:
            DataError: always, pointing at embed / zero-shot / search.
        """
        raise DataError(NOT_PREDICTIVE)

    def decode(self, logits: Tensor) -> list[Any]:
        """Not defined for embeddings.

        Raises:
            DataError: always, pointing at embed / zero-shot / search.
        """
        raise DataError(NOT_PREDICTIVE)

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """Retrieval metrics (``omnifuse.evaluation.retrieval.bidirectional_metrics``) of every column pair.

        Top-level keys (recall@1/5/10, mrr, median_rank, and with labels precision@10, map) average both
        directions and, with more than two columns, every pair; per-direction keys ``"a->b/recall@1"``.
        """
        from omnifuse.evaluation.retrieval import bidirectional_metrics

        unpacked = ContrastiveOutput.unpack(logits.detach().float().cpu(), self.columns, self.embed_dim)
        embeddings = unpacked.embeddings
        ids = targets.detach().cpu().long().numpy()
        labels: list[Any] | None = (  # None: an unlabelled row, relevant to no query
            [int(i) if i >= 0 else None for i in ids] if self.has_labels and (ids >= 0).any() else None
        )
        content = unpacked.content_ids if self.mask_duplicates else None  # identical cells: same answers

        def cells(name: str) -> np.ndarray | None:
            return None if content is None else content[name].numpy()

        per_pair = [
            bidirectional_metrics(embeddings[a].numpy(), embeddings[b].numpy(), labels, (a, b),
                                  cells(a), cells(b))
            for a, b in self.pairs()
        ]
        top = [k for k in per_pair[0] if "/" not in k]
        out: dict[str, Any] = {k: float(np.mean([m[k] for m in per_pair])) for k in top}
        for figures in per_pair:
            out |= {k: v for k, v in figures.items() if "/" in k}
        return out

    @property
    def classes(self) -> list[Any]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "embed_dim": self.embed_dim,
                "loss": self.loss_name, "queue_size": self.queue_size, "has_labels": self.has_labels,
                "mask_duplicates": self.mask_duplicates}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContrastiveTask:
        return cls(state["columns"], int(state["embed_dim"]), state["loss"], int(state["queue_size"]),
                   bool(state["has_labels"]), bool(state.get("mask_duplicates", True)))

    def training_state(self) -> dict[str, Any]:
        """The queues of recent embeddings, so that a resumed run does not start them empty."""
        return {"queues": {name: queue.state_dict() for name, queue in self.queues.items()}}

    def load_training_state(self, state: dict[str, Any]) -> None:
        for name, queue in self.queues.items():
            queue.load_state_dict(state.get("queues", {}).get(name, {}))

    def default_monitor(self) -> tuple[str, str]:
        return ("recall@1", "max")
