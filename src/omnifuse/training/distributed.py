"""Data-parallel helpers on top of Lightning Fabric: per-rank shards of every global batch, gathering
validation outputs, agreeing across ranks, and stopping every rank when one fails.

Every rank sees the same seeded permutation of the training rows each epoch. Global batch ``k`` is the
slice ``[k*B*W, (k+1)*B*W)`` of it (``B`` = ``training.batch_size`` per device, ``W`` = world size) and
rank ``r`` takes its ``r``-th near-equal part. A single process (``W = 1``) reads the very same global
batches, so a DDP run of ``W`` ranks with batch ``B`` follows a single-process run with batch ``B*W``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from omnifuse.data.bucketing import grouped_batches
from omnifuse.errors import OmnifuseError, PeerFailedError

AGREED = "_omnifuse_ranks_agreed"  # set on an exception every rank has been told about


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
        check_peers()
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
        lengths: (n,) each row's length (``bucketing.row_lengths``): when given and shuffling, every
            global batch holds rows of similar length (``bucketing.grouped_batches``).
    """

    def __init__(self, n: int, batch_size: int, rank: int, world: int, shuffle: bool, seed: int,
                 lengths: Tensor | None = None) -> None:
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.shuffle, self.seed, self.epoch, self.lengths = shuffle, seed, 0, lengths
        step = batch_size * world
        self.global_sizes = [min(step, n - start) for start in range(0, n, step)]
        if self.global_sizes and self.global_sizes[-1] < world:
            self.global_sizes.pop()

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of ``epoch`` (0-based)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.global_sizes)

    def global_batches(self, grouped: bool = True) -> list[Tensor]:
        """This epoch's global batches (row numbers), grouped by length when ``lengths`` was given."""
        if not self.shuffle:
            return list(torch.split(torch.arange(sum(self.global_sizes)), self.global_sizes))
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        if grouped and self.lengths is not None:
            shuffle_batches = torch.Generator().manual_seed(self.seed + self.epoch + 7_919)
            return grouped_batches(order, self.lengths, self.global_sizes, shuffle_batches)
        return list(torch.split(order[: sum(self.global_sizes)], self.global_sizes))

    def __iter__(self) -> Iterator[list[int]]:
        for rows in self.global_batches():
            parts = _split_sizes(len(rows), self.world)
            offset = sum(parts[: self.rank])
            yield rows[offset : offset + parts[self.rank]].tolist()

    def loss_scale(self, step: int) -> float:
        """Factor that turns this rank's mean loss of batch ``step`` into its share of the global mean.

        DDP averages gradients over ranks; with unequal parts (the last batch) a plain average would
        weigh rows unequally, so each rank scales by ``local rows * world / global rows``.
        """
        size = self.global_sizes[step]
        return _split_sizes(size, self.world)[self.rank] * self.world / size


def shard_train_loader(loader: DataLoader[Any], rank: int, world: int, seed: int,
                       lengths: Tensor | None = None) -> tuple[DataLoader[Any], GlobalBatchSampler | None]:
    """The training loader re-made over this rank's share of each global batch (grouped by ``lengths``
    when given, see ``GlobalBatchSampler``).

    Streaming (iterable) datasets shard themselves and are returned as they are, with no sampler.
    """
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset):
        return loader, None
    assert loader.batch_size is not None, "training loaders batch rows themselves"
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    sampler = GlobalBatchSampler(len(dataset), loader.batch_size, rank, world, shuffle, seed,  # type: ignore[arg-type]
                                 lengths)
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
    check_peers()
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
    check_peers()
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def all_ranks(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on every rank."""
    if world_size() == 1:
        return flag
    check_peers()
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())


def broadcast_from_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank, so decisions (early stopping) cannot diverge."""
    if world_size() == 1:
        return value
    check_peers()
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def zero_first(fn: Callable[[], None]) -> None:
    """Runs ``fn`` on rank 0 only (writing files), then lets every rank go on together.

    An OmnifuseError raised there is raised on every rank (the others get its message), so no rank is
    left waiting for one that stopped; any other error there reaches the others through ``stop_together``.
    """
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


# -- stopping together ------------------------------------------------------------------------------
# A rank that raises while the others wait in a collective (a gradient all-reduce, the validation
# gather, a broadcast) leaves them waiting until its process ends, or for the process-group timeout
# (30 minutes) when it does not: a caller that catches the error, or NCCL, which does not notice a
# peer's exit. Destroying or aborting the failing rank's group does not free them (DDP keeps it alive,
# and gloo cannot abort a pending operation). So the ranks agree instead: omnifuse calls
# ``check_peers`` before every collective of a run, a one-element all-reduce that every rank makes,
# and a rank that fails makes the matching call from ``stop_together`` with "failed". The first
# collective any rank waits in after a failure is therefore that agreement, which it leaves at once
# knowing that a rank failed, and the ranks then exchange the errors.

def _agree(ok: bool) -> bool:
    """True when every rank is ``ok`` (one all-reduce of one int32)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def _errors(mine: Exception | None) -> list[tuple[int, str, bool]]:
    """(rank, error, whether a bug) of every rank that failed, on every rank after a failed agreement."""
    part = None
    if mine is not None:
        bug = not isinstance(mine, OmnifuseError)
        part = (global_rank(), (f"{type(mine).__name__}: {mine}" if bug else str(mine))[:4000], bug)
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, part)
    return [p for p in parts if p is not None]


def check_peers() -> None:
    """Before a collective: returns when no rank failed; otherwise raises (see ``stop_together``).

    Raises:
        PeerFailedError: another rank failed; its rank and error are in the message.
    """
    if world_size() == 1 or _agree(True):
        return
    failed = _errors(None)
    rank, error, bug = failed[0] if failed else (-1, "unknown error", True)
    exc = PeerFailedError(
        f"DDP rank {rank} failed, so every rank stopped: {error}. That rank's own output has the details "
        "(a traceback when it is a bug); fix it and run again", bug=bug)
    setattr(exc, AGREED, True)
    raise exc


@contextmanager
def stop_together() -> Iterator[None]:
    """Makes an error on one rank stop every rank within seconds, each with that error.

    An exception raised on this rank inside the block is announced to the others (at the agreement
    they make before their next collective, see ``check_peers``), which then raise PeerFailedError
    naming this rank and its error; this rank raises its own. Without an exception, or with one
    process, it costs nothing.
    """
    if world_size() == 1:
        yield
        return
    try:
        yield
    except Exception as exc:
        if not getattr(exc, AGREED, False) and _announce(exc):
            setattr(exc, AGREED, True)
        raise


def _announce(exc: Exception) -> bool:
    """Tells the other ranks that this one failed with ``exc``; False when they cannot be reached
    (their processes ended: they stop on their own)."""
    try:
        _agree(False)
        _errors(exc)
    except Exception:  # noqa: BLE001 - the transport's errors vary (gloo, NCCL); the original error counts
        return False
    return True
