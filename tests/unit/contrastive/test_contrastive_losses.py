"""Contrastive losses against values computed by hand (explicit loops) on tiny embeddings; the queue."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omnifuse.contrastive.losses import MAX_LOGIT_SCALE, clip_loss, negatives_mask, siglip_loss
from omnifuse.contrastive.queue import EmbeddingQueue

A = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)  # (3, 2)
B = F.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0], [-1.0, 0.2]]), dim=-1)  # (3, 2)


def _dot(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(sum(x * y for x, y in zip(u.tolist(), v.tolist(), strict=True)))


def _infonce_by_hand(q: torch.Tensor, k: torch.Tensor, scale: float, allowed: list[list[bool]]) -> float:
    total = 0.0
    for i in range(len(q)):
        denominator = sum(math.exp(scale * _dot(q[i], k[j])) for j in range(len(k)) if allowed[i][j])
        total += -(scale * _dot(q[i], k[i]) - math.log(denominator))
    return total / len(q)


def test_clip_loss_matches_explicit_loops() -> None:
    log_scale = torch.tensor(math.log(2.0))
    everything = [[True] * 3 for _ in range(3)]
    expected = (_infonce_by_hand(A, B, 2.0, everything) + _infonce_by_hand(B, A, 2.0, everything)) / 2
    assert float(clip_loss(A, B, log_scale)) == pytest.approx(expected, rel=1e-5)


def test_clip_loss_2x2_closed_form() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # a_i . b_j = identity: each row's softmax is e^s / (e^s + 1) for the positive
    loss = clip_loss(a, a.clone(), torch.tensor(0.0))  # scale 1
    assert float(loss) == pytest.approx(-math.log(math.e / (math.e + 1)), rel=1e-6)


def test_clip_scale_is_clamped_at_100() -> None:
    huge, at_max = clip_loss(A, B, torch.tensor(10.0)), clip_loss(A, B, torch.tensor(MAX_LOGIT_SCALE))
    assert float(huge) == pytest.approx(float(at_max))
    assert math.exp(MAX_LOGIT_SCALE) == pytest.approx(100.0)


def test_same_label_rows_are_not_negatives() -> None:
    labels = torch.tensor([7, 7, 3])
    allowed = [[not (labels[i] == labels[j] and i != j) for j in range(3)] for i in range(3)]
    expected = (_infonce_by_hand(A, B, 1.0, allowed) + _infonce_by_hand(B, A, 1.0, allowed)) / 2
    assert float(clip_loss(A, B, torch.tensor(0.0), labels)) == pytest.approx(expected, rel=1e-5)
    assert float(clip_loss(A, B, torch.tensor(0.0))) != pytest.approx(expected, rel=1e-3)


def test_missing_labels_mask_nothing() -> None:
    mask = negatives_mask(torch.tensor([-1, -1, 2]), torch.tensor([-1, -1, 2]), 3, 3)
    assert not mask.any()
    assert negatives_mask(torch.tensor([1, 1]), torch.tensor([1, 1, 1]), 2, 3).tolist() == [
        [False, True, True], [True, False, True]
    ]


def test_queue_adds_negatives_to_clip() -> None:
    queue = F.normalize(torch.tensor([[1.0, 1.0]]), dim=-1)  # (1, 2), queued for both towers
    keys = torch.cat([B, queue])
    allowed = [[True] * 4 for _ in range(3)]
    forward = _infonce_by_hand(A, keys, 1.0, allowed)
    backward = _infonce_by_hand(B, torch.cat([A, queue]), 1.0, allowed)
    loss = clip_loss(A, B, torch.tensor(0.0), None, queue, queue)
    assert float(loss) == pytest.approx((forward + backward) / 2, rel=1e-5)


def _siglip_by_hand(a: torch.Tensor, b: torch.Tensor, t: float, bias: float, keep: list[list[bool]]) -> float:
    total = 0.0
    for i in range(len(a)):
        for j in range(len(b)):
            if keep[i][j]:
                z = 1.0 if i == j else -1.0
                total += -math.log(1 / (1 + math.exp(-z * (t * _dot(a[i], b[j]) + bias))))
    return total / len(a)


def test_siglip_loss_matches_explicit_loops() -> None:
    keep = [[True] * 3 for _ in range(3)]
    expected = _siglip_by_hand(A, B, 10.0, -10.0, keep)
    loss = siglip_loss(A, B, torch.tensor(math.log(10.0)), torch.tensor(-10.0))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_siglip_same_label_pairs_left_out_and_queue_adds_negatives() -> None:
    labels = torch.tensor([0, 0, 1])
    keep = [[i == j or labels[i] != labels[j] for j in range(3)] for i in range(3)]
    expected = _siglip_by_hand(A, B, 2.0, -1.0, keep)
    assert float(siglip_loss(A, B, torch.tensor(math.log(2.0)), torch.tensor(-1.0), labels)) == pytest.approx(
        expected, rel=1e-5
    )
    queue = F.normalize(torch.tensor([[1.0, 1.0]]), dim=-1)
    extra = sum(
        -math.log(1 / (1 + math.exp(2.0 * _dot(q, queue[0]) - 1.0))) for q in (*A, *B)
    ) / 3
    with_queue = siglip_loss(A, B, torch.tensor(math.log(2.0)), torch.tensor(-1.0), None, queue, queue)
    assert float(with_queue) == pytest.approx(_siglip_by_hand(A, B, 2.0, -1.0, [[True] * 3] * 3) + extra,
                                              rel=1e-5)


def test_losses_backpropagate_to_the_scale() -> None:
    scale = torch.tensor(1.0, requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    (clip_loss(A, B, scale) + siglip_loss(A, B, scale, bias)).backward()
    assert scale.grad is not None and bias.grad is not None and float(scale.grad) != 0.0


def test_queue_is_fifo_detached_and_bounded() -> None:
    queue = EmbeddingQueue(size=3)
    first = torch.tensor([[1.0, 0.0], [2.0, 0.0]], requires_grad=True)
    queue.push(first, torch.tensor([10, 11]))
    queue.push(torch.tensor([[3.0, 0.0], [4.0, 0.0]]), torch.tensor([12, 13]))
    assert queue.embeddings is not None and queue.labels is not None
    assert queue.embeddings[:, 0].tolist() == [2.0, 3.0, 4.0]  # the oldest row left first
    assert queue.labels.tolist() == [11, 12, 13]
    assert not queue.embeddings.requires_grad
    assert len(queue) == 3
    queue.clear()
    assert len(queue) == 0


def test_queue_of_size_zero_keeps_nothing() -> None:
    queue = EmbeddingQueue(size=0)
    queue.push(torch.ones(2, 2), torch.zeros(2))
    assert len(queue) == 0
