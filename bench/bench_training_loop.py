"""Training-loop overhead: omnifuse's Trainer against a hand-written PyTorch loop over the same model.

Both sides train the same fused AV-Digits model (built by ``omnifuse.build.build_model``: small_cnn image,
mel_cnn audio, attention fusion) from the same seed, on the same DataLoader of collated batches made once
by omnifuse's preprocessing, with AdamW at the same learning rate and the same batch size, on the CPU.

Two rows:
- ``training_loop``: one training epoch per repeat, validation excluded (``Trainer._train_epoch``, the
  body of ``Trainer.fit``, against ``for batch in loader: zero_grad; ce(model(...)); backward; step``).
  The Trainer runs with its defaults (grad clipping at 1.0, warmup + cosine schedule, Fabric wrappers):
  that is the price a user pays, so it is counted.
- ``training_fit``: a whole ``Trainer.fit`` of a few epochs (validation pass, early stopping, checkpoint
  and log writes every epoch) against the plain loop given the same validation pass.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from common import (
    AVSetup,
    BenchResult,
    Sample,
    Settings,
    av_digits_setup,
    interleaved,
    interleaved_prepared,
    median,
    paired_ratio,
    prepared_examples,
)
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

NAME = "training_loop"
GOAL = ">= 0.95"


EPOCHS_PER_REPEAT = 6  # training_loop times single epochs: many short samples make a steadier median


def _sizes(settings: Settings) -> dict[str, int]:
    if settings.quick:
        return {"n_train": 64, "n_valid": 32, "fit_epochs": 1}
    return {"n_train": 192, "n_valid": 64, "fit_epochs": 2}


def _loader(examples: list[Any], batch_size: int) -> DataLoader[Any]:
    from omnifuse.data.collate import collate
    from omnifuse.data.dataset import ExampleDataset

    # No shuffling: both sides see the very same batches in the same order.
    return DataLoader(ExampleDataset(examples), batch_size=batch_size, shuffle=False, collate_fn=collate)


def _model(setup: AVSetup) -> nn.Module:
    from omnifuse.build import build_model

    torch.manual_seed(0)
    return build_model(setup.config, setup.preprocessors, setup.task)


def _trainer(setup: AVSetup, epochs: int, checkpoints: Path) -> Any:
    from omnifuse.training.loop import EncoderSchedule, Trainer

    cfg = replace(setup.config.training, epochs=epochs)
    return Trainer(_model(setup), setup.task, cfg, EncoderSchedule(), checkpoints, Console(quiet=True),
                   show_progress=False)


def plain_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader[Any]) -> None:
    """The baseline: one epoch of the textbook PyTorch loop."""
    ce = nn.CrossEntropyLoss()
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        loss = ce(model(batch.inputs, batch.presence), batch.target)
        loss.backward()
        optimizer.step()


def plain_validation(model: nn.Module, loader: DataLoader[Any]) -> float:
    """The baseline's validation pass: loss and accuracy over ``loader`` without gradients."""
    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for batch in loader:
            logits.append(model(batch.inputs, batch.presence))
            targets.append(batch.target)
    model.train()
    all_logits, all_targets = torch.cat(logits), torch.cat(targets)
    nn.functional.cross_entropy(all_logits, all_targets)
    return float((all_logits.argmax(-1) == all_targets).float().mean())


def _epoch_sides(setup: AVSetup, train: DataLoader[Any], settings: Settings,
                 checkpoints: Path) -> dict[str, Callable[[], Any]]:
    """One callable per side, each running one more training epoch of a persistent model."""
    trainer = _trainer(setup, settings.warmup + settings.repeats * EPOCHS_PER_REPEAT, checkpoints)
    fabric_loader = trainer.fabric.setup_dataloaders(train, move_to_device=False,
                                                     use_distributed_sampler=False)
    trainer._setup(len(fabric_loader))  # what Trainer.fit does before its first epoch
    epoch = iter(range(10**6))
    model = _model(setup)
    optimizer = torch.optim.AdamW(model.parameters(), lr=setup.config.training.lr)
    return {
        "omnifuse": lambda: trainer._train_epoch(fabric_loader, next(epoch), None),
        "baseline": lambda: plain_epoch(model, optimizer, train),
    }


def _fit_factories(setup: AVSetup, train: DataLoader[Any], valid: DataLoader[Any], epochs: int,
                   checkpoints: Path) -> dict[str, Callable[[], Callable[[], Any]]]:
    """Per side, a factory of fresh (untimed) state returning the whole run to time."""

    def omnifuse_run() -> Callable[[], Any]:
        trainer = _trainer(setup, epochs, checkpoints)
        return lambda: trainer.fit(train, valid)

    def baseline_run() -> Callable[[], Any]:
        model = _model(setup)
        optimizer = torch.optim.AdamW(model.parameters(), lr=setup.config.training.lr)

        def run() -> None:
            for _ in range(epochs):
                plain_epoch(model, optimizer, train)
                plain_validation(model, valid)
        return run

    return {"omnifuse": omnifuse_run, "baseline": baseline_run}


def _throughput_result(name: str, samples: dict[str, list[Sample]], rows: int, note: str,
                       extra: dict[str, Any], goal: str = GOAL) -> BenchResult:
    """samples/s medians of both sides and the paired ratio (wall clock; CPU-time ratio in details)."""
    wall = {side: median([s.wall for s in samples[side]]) for side in samples}
    cpu = {side: median([s.cpu for s in samples[side]]) for side in samples}
    rate = {side: rows / wall[side] for side in wall}
    base_wall, omni_wall = [s.wall for s in samples["baseline"]], [s.wall for s in samples["omnifuse"]]
    details = {
        "rows_per_repeat": rows,
        "median_seconds": wall,
        "median_cpu_seconds": cpu,
        "ratio_of_medians": rate["omnifuse"] / rate["baseline"],
        "cpu_time_ratio": cpu["baseline"] / cpu["omnifuse"],
        "all_wall_seconds": {side: [round(s.wall, 4) for s in samples[side]] for side in samples},
        **extra,
    }
    ratio = paired_ratio(base_wall, omni_wall)  # throughput ratio = baseline time / omnifuse time
    return BenchResult(name, "samples/s", rate["omnifuse"], rate["baseline"], ratio, goal, details, note)


def run(settings: Settings) -> list[BenchResult]:
    """Measures both rows; returns their results."""
    sizes = _sizes(settings)
    setup = av_digits_setup(192, 64)
    train_examples = prepared_examples(setup, "train")[: sizes["n_train"]]
    valid_examples = prepared_examples(setup, "valid")[: sizes["n_valid"]]
    batch_size = setup.config.training.batch_size
    train, valid = _loader(train_examples, batch_size), _loader(valid_examples, batch_size)
    common = {"batch_size": batch_size, "lr": setup.config.training.lr, "n_train": len(train_examples),
              "n_valid": len(valid_examples)}
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_") as tmp:
        epochs = interleaved(_epoch_sides(setup, train, settings, Path(tmp) / "epochs"),
                             settings.repeats * EPOCHS_PER_REPEAT, settings.warmup)
        factories = _fit_factories(setup, train, valid, sizes["fit_epochs"], Path(tmp) / "fit")
        fit = interleaved_prepared(factories, settings.repeats, 0)
    fit_rows = sizes["fit_epochs"] * len(train_examples)
    return [
        _throughput_result("training_loop", epochs, len(train_examples),
                           f"1 epoch of {len(train_examples)} rows, no validation",
                           common | {"timed_epochs": settings.repeats * EPOCHS_PER_REPEAT}),
        _throughput_result(
            "training_fit", fit, fit_rows,
            f"fit(): {sizes['fit_epochs']} epoch(s) + validation ({len(valid_examples)} rows); adds "
            "per-epoch metrics, checkpoint and log the baseline does not write",
            common | {"epochs": sizes["fit_epochs"], "timed_fits": settings.repeats}, goal="",
        ),
    ]
