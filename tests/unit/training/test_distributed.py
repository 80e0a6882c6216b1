"""Sharding of global batches across ranks, precision checks and the scale options of the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

from omnifuse.config.sections import Config, TrainingConfig, override_training
from omnifuse.data.collate import Example, collate
from omnifuse.data.dataset import ExampleDataset
from omnifuse.errors import ConfigError
from omnifuse.training import distributed
from omnifuse.training.distributed import GlobalBatchSampler, shard_eval_loader, shard_train_loader
from omnifuse.training.fabric import check_precision
from omnifuse.training.loop import EncoderSchedule, Trainer


def _batches(n: int, batch: int, rank: int, world: int, epoch: int = 0) -> list[list[int]]:
    sampler = GlobalBatchSampler(n, batch, rank, world, shuffle=True, seed=3)
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("n", [20, 23, 18])
def test_ranks_split_every_global_batch_of_the_single_process_order(n: int) -> None:
    single = _batches(n, 8, 0, 1)
    ranks = [_batches(n, 4, r, 2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)  # same number of steps on every rank
    for step, whole in enumerate(single):
        assert ranks[0][step] + ranks[1][step] == whole  # rank 0 takes the first part, rank 1 the rest


def test_epochs_reshuffle_and_without_shuffle_keeps_table_order() -> None:
    assert _batches(20, 8, 0, 1, epoch=0) != _batches(20, 8, 0, 1, epoch=1)
    assert list(GlobalBatchSampler(5, 2, 0, 1, shuffle=False, seed=0)) == [[0, 1], [2, 3], [4]]


def test_loss_scale_makes_unequal_parts_a_global_mean() -> None:
    # 9 rows, batch 3 per rank on 2 ranks: global batches of 6 and 3; the last splits 2 + 1
    samplers = [GlobalBatchSampler(9, 3, r, 2, shuffle=False, seed=0) for r in range(2)]
    assert [list(s)[1] for s in samplers] == [[6, 7], [8]]
    assert samplers[0].loss_scale(1) == pytest.approx(2 * 2 / 3)
    assert samplers[1].loss_scale(1) == pytest.approx(1 * 2 / 3)
    # DDP averages the ranks: (scaled mean_0 + scaled mean_1) / 2 == the mean over the 3 rows
    assert samplers[0].loss_scale(0) == samplers[1].loss_scale(0) == 1.0


def test_a_last_global_batch_smaller_than_the_world_is_dropped() -> None:
    assert len(GlobalBatchSampler(9, 4, 0, 2, shuffle=False, seed=0)) == 1  # 8 + 1 row: the 1 is dropped
    assert len(GlobalBatchSampler(9, 4, 0, 1, shuffle=False, seed=0)) == 3  # one process keeps it


def _examples(n: int) -> list[Example]:
    return [Example(i, {"x": {"v": torch.tensor([float(i)])}}, {"x": True}, torch.tensor(i % 2))
            for i in range(n)]


def test_shard_loaders_partition_the_rows() -> None:
    loader = DataLoader(ExampleDataset(_examples(7)), batch_size=2, collate_fn=collate)
    seen = [int(i) for r in range(2) for b in shard_eval_loader(loader, r, 2) for i in b.index]
    assert sorted(seen) == list(range(7))
    assert shard_eval_loader(loader, 0, 1) is loader
    sharded, sampler = shard_train_loader(loader, 1, 2, seed=0)
    assert sampler is not None and not sampler.shuffle  # the loader did not shuffle
    assert [b.index.tolist() for b in sharded] == [[2, 3], [6]]


def test_single_process_collectives_are_identities() -> None:
    logits, targets, index = torch.randn(3, 2), torch.tensor([0, 1, 0]), torch.tensor([2, 0, 1])
    assert distributed.gather_outputs(logits, targets, index)[0] is logits
    assert distributed.sum_across_ranks([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    assert distributed.all_ranks(False, torch.device("cpu")) is False
    assert distributed.broadcast_from_zero({"a": 1}) == {"a": 1}
    assert distributed.is_rank_zero() and distributed.world_size() == 1


def test_zero_first_raises_rank_zero_errors() -> None:
    from omnifuse.errors import DataError

    def fail() -> None:
        raise DataError("output folder 'x' is a file")

    with pytest.raises(DataError, match="output folder 'x' is a file"):
        distributed.zero_first(fail)


def test_fp16_on_the_cpu_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="'16-mixed' needs a GPU .* use bf16-mixed on the CPU"):
        check_precision("16-mixed", "cpu")
    check_precision("bf16-mixed", "cpu")  # supported


BASE = {"label": {"column": "y", "task": "binary"}, "columns": {"x": {"type": "numeric"}}}


@pytest.mark.parametrize(("training", "message"), [
    ({"precision": "bf16"}, r"training.precision: 'bf16' is not supported; use one of 32-true, bf16-mixed"),
    ({"strategy": "dp"}, r"training.strategy: 'dp' is not supported; use one of auto, ddp, fsdp"),
    ({"devices": 0}, r"training.devices: must be a number >= 1, auto, -1 \(all\) or GPU indices .*, got 0"),
    ({"num_nodes": 0}, r"training.num_nodes: must be >= 1, got 0"),
    ({"steps_per_epoch": -1}, r"training.steps_per_epoch: must be >= 0 \(0: a full pass\), got -1"),
])
def test_scale_options_are_validated(training: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({**BASE, "training": training})


def test_override_training_replaces_and_validates() -> None:
    config = Config.from_dict(BASE)
    changed = override_training(config, devices=2, strategy="ddp", num_nodes=None)
    assert (changed.training.devices, changed.training.strategy, changed.training.num_nodes) == (2, "ddp", 1)
    assert config.training.devices == 1  # the original is untouched
    with pytest.raises(ConfigError, match="training.strategy: 'horovod' is not supported"):
        override_training(config, strategy="horovod")


class _Net(nn.Module):
    """A stand-in model with one encoder; records whether autocast was on in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"x": nn.Linear(1, 4)})
        self.head = nn.Linear(4, 2)
        self.autocast: list[tuple[bool, torch.dtype]] = []

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]],
                presence: dict[str, torch.Tensor]) -> torch.Tensor:
        self.autocast.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return self.head(torch.relu(self.encoders["x"](inputs["x"]["v"])))  # (B, 2)


def test_bf16_mixed_trains_under_cpu_autocast(tmp_path: Path) -> None:
    from omnifuse.tasks import make_task

    task = make_task("binary")
    task.fit([0, 1])
    cfg = TrainingConfig(epochs=1, batch_size=4, accelerator="cpu", precision="bf16-mixed", patience=1)
    net = _Net()
    trainer = Trainer(net, task, cfg, EncoderSchedule(), tmp_path / "ck",  # type: ignore[arg-type]
                      Console(quiet=True), False)
    loader = DataLoader(ExampleDataset(_examples(8)), batch_size=4, collate_fn=collate, shuffle=True)
    result = trainer.fit(loader, DataLoader(ExampleDataset(_examples(4)), batch_size=4, collate_fn=collate))
    assert result.history and all(p.dtype == torch.float32 for p in net.parameters())  # fp32 master weights
    assert (True, torch.bfloat16) in net.autocast  # training steps ran under bf16 autocast


def test_without_a_process_group_stop_together_and_check_peers_change_nothing() -> None:
    distributed.check_peers()
    with pytest.raises(ValueError, match="^bad value$"), distributed.stop_together():
        raise ValueError("bad value")


def _rank_that_fails_or_waits(rank: int, port: int, results: Any) -> None:
    """Rank 1 fails inside stop_together; rank 0 goes on to a collective (the end-of-epoch sum)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        with distributed.stop_together():
            if rank == 1:
                raise ValueError("bad value in rank 1's batch")
            distributed.sum_across_ranks([1.0], torch.device("cpu"))
    except Exception as exc:  # noqa: BLE001 - what each rank raised is the result
        results.put((rank, type(exc).__name__, str(exc), getattr(exc, "bug", None)))
    dist.destroy_process_group()


def test_an_error_on_one_rank_is_raised_on_the_other_at_its_next_collective() -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.Queue()
    mp.start_processes(_rank_that_fails_or_waits, args=(port, results), nprocs=2, join=True,
                       start_method="spawn")
    raised = dict((r[0], r[1:]) for r in (results.get(timeout=10), results.get(timeout=10)))
    assert raised[1] == ("ValueError", "bad value in rank 1's batch", None)  # its own error
    name, message, bug = raised[0]
    assert name == "PeerFailedError" and bug is True
    assert message.startswith("DDP rank 1 failed, so every rank stopped: ValueError: bad value in rank 1's "
                              "batch. That rank's own output has the details")
