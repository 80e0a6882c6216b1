"""Data-parallel helpers on top of Lightning Fabric: per-rank shards of every global batch, gathering
validation outputs, and agreeing across ranks.

Every rank sees the same seeded permutation of the training rows each epoch. Global batch ``k`` is the
slice ``[k*B*W, (k+1)*B*W)`` of it (``B`` = ``training.batch_size`` per device, ``W`` = world size) and
rank ``r`` takes its ``r``-th near-equal part. A single process (``W = 1``) reads the very same global
batches, so a DDP run of ``W`` ranks with batch ``B`` follows a single-process run with batch ``B*W``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler


def world_size() -> int:
    """Number of processes of the initialised process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def global_rank() -> int:
    """This process's rank in the process group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_rank_zero() -> bool:
    """True on the process that writes files and shows progress (the only one without DDP)."""
    return global_rank() == 0


def barrier() -> None:
    """Waits for every rank (no-op without a process group)."""
    if world_size() > 1:
        dist.barrier()


def _split_sizes(total: int, parts: int) -> list[int]:
    """``total`` cut into ``parts`` near-equal sizes, larger ones first: 7, 3 -> [3, 2, 2]."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of every global batch of a seeded permutation (see the module docstring).

    A last global batch with fewer rows than ranks is dropped (every rank must take the same number of
    steps); with one rank nothing is dropped.

    Args:
        n: rows in the dataset.
        batch_size: rows per rank and step.
        rank / world: this rank and the number of ranks.
        shuffle: a new permutation per epoch (seed + epoch); False keeps the table order.
        seed: the base seed.
    """

    def __init__(self, n: int, batch_size: int, rank: int, world: int, shuffle: bool, seed: int) -> None:
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        step = batch_size * world
        self.global_sizes = [min(step, n - start) for start in range(0, n, step)]
        if self.global_sizes and self.global_sizes[-1] < world:
            self.global_sizes.pop()

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of ``epoch`` (0-based)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.global_sizes)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        start = 0
        for size in self.global_sizes:
            parts = _split_sizes(size, self.world)
            offset = start + sum(parts[: self.rank])
            yield order[offset : offset + parts[self.rank]].tolist()
            start += size

    def loss_scale(self, step: int) -> float:
        """Factor that turns this rank's mean loss of batch ``step`` into its share of the global mean.

        DDP averages gradients over ranks; with unequal parts (the last batch) a plain average would
        weigh rows unequally, so each rank scales by ``local rows * world / global rows``.
        """
        size = self.global_sizes[step]
        return _split_sizes(size, self.world)[self.rank] * self.world / size


def shard_train_loader(loader: DataLoader[Any], rank: int, world: int,
                       seed: int) -> tuple[DataLoader[Any], GlobalBatchSampler | None]:
    """The training loader re-made over this rank's share of each global batch.

    Streaming (iterable) datasets shard themselves and are returned as they are, with no sampler.
    """
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset):
        return loader, None
    assert loader.batch_size is not None, "training loaders batch rows themselves"
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    sampler = GlobalBatchSampler(len(dataset), loader.batch_size, rank, world, shuffle, seed)  # type: ignore[arg-type]
    sharded = DataLoader(dataset, batch_sampler=sampler, collate_fn=loader.collate_fn,
                         num_workers=loader.num_workers, worker_init_fn=loader.worker_init_fn)
    return sharded, sampler


class _Rows(Dataset[Any]):
    """Rows ``rank, rank + world, ...`` of a map-style dataset."""

    def __init__(self, dataset: Any, rank: int, world: int) -> None:
        self.dataset, self.positions = dataset, range(rank, len(dataset), world)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.positions[i]]


def shard_eval_loader(loader: DataLoader[Any], rank: int, world: int) -> DataLoader[Any]:
    """Every ``world``-th row of an evaluation loader, starting at ``rank`` (iterable ones as they are)."""
    if world == 1 or isinstance(loader.dataset, IterableDataset):
        return loader
    return DataLoader(_Rows(loader.dataset, rank, world), batch_size=loader.batch_size,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers)


def gather_outputs(logits: Tensor, targets: Tensor | None,
                   indices: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """Every rank's (logits, targets, row indices) concatenated and ordered by row index, on every rank.

    With one process the inputs come back unchanged.
    """
    world = world_size()
    if world == 1:
        return logits, targets, indices
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, (logits.cpu(), None if targets is None else targets.cpu(), indices.cpu()))
    all_logits = torch.cat([p[0] for p in parts])  # (N, C)
    all_indices = torch.cat([p[2] for p in parts])  # (N,)
    order = torch.argsort(all_indices, stable=True)
    all_targets = None if targets is None else torch.cat([p[1] for p in parts])[order]
    return all_logits[order], all_targets, all_indices[order]


def sum_across_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums of ``values`` over every rank (the values themselves with one process)."""
    if world_size() == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def all_ranks(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on every rank."""
    if world_size() == 1:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())


def broadcast_from_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank, so decisions (early stopping) cannot diverge."""
    if world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def zero_first(fn: Callable[[], None]) -> None:
    """Runs ``fn`` on rank 0 only (writing files), then lets every rank go on together.

    An OmnifuseError raised there is raised on every rank (the others get its message), so no rank is
    left waiting for one that stopped.
    """
    from omnifuse.errors import OmnifuseError

    error: OmnifuseError | None = None
    if is_rank_zero():
        try:
            fn()
        except OmnifuseError as exc:
            error = exc
    message = broadcast_from_zero(None if error is None else str(error))
    if error is not None:
        raise error
    if message is not None:
        raise OmnifuseError(message)
