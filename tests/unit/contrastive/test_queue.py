"""EmbeddingQueue: saved and restored for the checkpoint, moved to the batch's device, and shared by every
rank under DDP (two gloo processes on the CPU)."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from omnifuse.contrastive.queue import EmbeddingQueue, gather_rows


def test_state_round_trip_keeps_the_newest_rows() -> None:
    queue = EmbeddingQueue(3)
    queue.push(torch.arange(8.0).reshape(4, 2), torch.tensor([0, 1, 2, 3]))
    state = queue.state_dict()
    restored = EmbeddingQueue(2)  # a smaller queue keeps the newest rows
    restored.load_state_dict(state)
    assert restored.embeddings is not None and restored.labels is not None
    assert torch.equal(restored.embeddings, torch.tensor([[4.0, 5.0], [6.0, 7.0]]))
    assert torch.equal(restored.labels, torch.tensor([2, 3]))
    empty = EmbeddingQueue(3)
    assert empty.state_dict() == {}
    queue.load_state_dict({})
    assert len(queue) == 0


def test_to_moves_the_rows_and_a_push_follows_the_batch() -> None:
    queue = EmbeddingQueue(4)
    queue.push(torch.ones(2, 3, dtype=torch.float64), torch.tensor([1, 2]))
    assert queue.to("cpu") is queue
    queue.push(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([5]))
    assert len(queue) == 3 and queue.labels is not None and queue.labels.tolist() == [1, 2, 5]


def test_gather_rows_without_a_process_group_is_the_identity() -> None:
    rows = torch.randn(3, 2)
    assert gather_rows(rows) is rows


def _rank(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        queue = EmbeddingQueue(8)
        rows = torch.full((1 + rank, 2), float(rank))  # rank 0 pushes 1 row, rank 1 pushes 2
        queue.push(gather_rows(rows), gather_rows(torch.full((1 + rank,), rank)))
        save_file(queue.state_dict(), str(Path(out) / f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_rank_holds_every_ranks_rows_in_rank_order(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    states = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    for state in states:
        assert state["embeddings"].tolist() == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
        assert state["labels"].tolist() == [0, 1, 1]
