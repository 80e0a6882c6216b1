"""Contrastive losses on L2-normalised embeddings: symmetric InfoNCE (CLIP) and pairwise sigmoid (SigLIP).

Both take a batch of paired embeddings ``a[i] <-> b[i]`` (the positives), optional queued embeddings of each
side as extra negatives (MoCo, https://arxiv.org/abs/1911.05722) and optional labels: rows that share a label
are not negatives of each other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learned scale exp(t) at 100
CLIP_INIT_TEMPERATURE = 0.07
SIGLIP_INIT_LOGIT_SCALE = math.log(10.0)  # SigLIP: t' = log 10
SIGLIP_INIT_BIAS = -10.0


def negatives_mask(labels: Tensor | None, candidate_labels: Tensor | None, rows: int, columns: int) -> Tensor:
    """(rows, columns) bool, True where a candidate must not count as a negative of a row.

    Candidate ``j < rows`` is row ``j`` of the batch itself (``j == i`` is the positive, never masked);
    a candidate is masked when it shares a key with the row. Keys < 0 mean "none" and match nothing.

    Args:
        labels: (rows,) long label ids of the batch, or (rows, G) several keys per row (the label and
            each tower's content id: rows with the same text are not each other's negatives), or None.
        candidate_labels: (columns,) or (columns, G) keys of the candidates (the batch, then the queue).
    """
    if labels is None or candidate_labels is None:
        return torch.zeros(rows, columns, dtype=torch.bool)
    keys = labels.reshape(rows, 1, -1)  # (R, 1, G)
    candidate_keys = candidate_labels.to(labels.device).reshape(1, columns, -1)  # (1, C, G)
    same = ((keys == candidate_keys) & (keys >= 0)).any(dim=-1)  # (R, C)
    positive = torch.zeros_like(same)
    positive[:, :rows] = torch.eye(rows, dtype=torch.bool, device=same.device)
    return same & ~positive


def _candidates(batch: Tensor, extra: Tensor | None) -> Tensor:
    return batch if extra is None or len(extra) == 0 else torch.cat([batch, extra.to(batch.dtype)])


def _candidate_labels(
    labels: Tensor | None, extra_labels: Tensor | None, extra: Tensor | None
) -> Tensor | None:
    if labels is None or extra is None or len(extra) == 0:
        return labels
    assert extra_labels is not None, "queued embeddings carry their labels"
    return torch.cat([labels, extra_labels.to(labels.device)])


def clip_loss(
    a: Tensor,
    b: Tensor,
    logit_scale: Tensor,
    labels: Tensor | None = None,
    extra_a: Tensor | None = None,
    extra_b: Tensor | None = None,
    extra_labels: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE of CLIP (https://arxiv.org/abs/2103.00020).

    ``loss = (CE(s * a @ [b; Qb].T, i) + CE(s * b @ [a; Qa].T, i)) / 2`` with ``s = exp(logit_scale)``
    clamped at 100; same-label candidates are left out of the softmax.

    Args:
        a, b: (B, D) L2-normalised embeddings, row i of each is a pair.
        logit_scale: () the log of the inverse temperature.
        labels: (B,) label ids or (B, G) keys (see ``negatives_mask``; < 0: none), or None.
        extra_a, extra_b: (Q, D) queued embeddings of a's and b's towers (extra negatives) or None.
        extra_labels: (Q,) or (Q, G) keys of the queued rows.
    Returns:
        () the mean loss.
    """
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    targets = torch.arange(len(a), device=a.device)
    total = a.new_zeros(())
    for query, keys, extra in ((a, b, extra_b), (b, a, extra_a)):
        candidates = _candidates(keys, extra)  # (B + Q, D)
        logits = scale * query @ candidates.T  # (B, B + Q)
        mask = negatives_mask(labels, _candidate_labels(labels, extra_labels, extra), *logits.shape)
        logits = logits.masked_fill(mask.to(logits.device), float("-inf"))
        total = total + F.cross_entropy(logits, targets)
    return total / 2


def siglip_loss(
    a: Tensor,
    b: Tensor,
    logit_scale: Tensor,
    bias: Tensor,
    labels: Tensor | None = None,
    extra_a: Tensor | None = None,
    extra_b: Tensor | None = None,
    extra_labels: Tensor | None = None,
) -> Tensor:
    """Pairwise sigmoid loss of SigLIP (https://arxiv.org/abs/2303.15343).

    ``loss = -1/B * sum_ij log sigmoid(z_ij * (t * a_i . b_j + bias))`` with ``z_ij = 1`` on the
    diagonal and -1 elsewhere, ``t = exp(logit_scale)`` (clamped at 100). Same-label pairs off the
    diagonal are left out; queued embeddings add negative pairs (a vs Qb and b vs Qa).

    Args: as ``clip_loss``, plus ``bias`` () the learnable logit bias.
    Returns:
        () the loss.
    """
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    rows = len(a)
    logits = scale * a @ b.T + bias  # (B, B)
    signs = 2 * torch.eye(rows, device=a.device, dtype=a.dtype) - 1  # (B, B): +1 positives, -1 negatives
    keep = ~negatives_mask(labels, labels, rows, rows).to(a.device)
    total = -(F.logsigmoid(signs * logits) * keep).sum()
    for query, extra in ((a, extra_b), (b, extra_a)):
        if extra is None or len(extra) == 0:
            continue
        queued = scale * query @ extra.to(query.dtype).T + bias  # (B, Q): all negatives
        mask = negatives_mask(labels, _candidate_labels(labels, extra_labels, extra), rows, rows + len(extra))
        total = total - (F.logsigmoid(-queued) * ~mask[:, rows:].to(a.device)).sum()
    return total / rows
