"""Trainer: freezing schedule, lr multipliers, gradient accumulation, early stopping, logs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from omnifuse.build import build_model, make_preprocessors
from omnifuse.config import Config, TrainingConfig
from omnifuse.data.collate import collate
from omnifuse.data.dataset import ExampleDataset, attach_targets, fit_values, input_specs, make_examples
from omnifuse.tasks import make_task
from omnifuse.training.loop import EncoderSchedule, Trainer


def _setup(tmp_path: Path, **training: object) -> tuple[Trainer, DataLoader, DataLoader]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=64)
    frame = pd.DataFrame(
        {
            "x": x,
            "words": [("up" if v > 0 else "down") + f" w{i}" for i, v in enumerate(x)],
            "y": np.where(x > 0, "pos", "neg"),
        }
    )
    config = Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {
                "x": {"type": "numeric"},
                "words": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
            },
            "fusion": "concat",
            "training": {"batch_size": 16, **training},
        }
    )
    task = make_task("binary", "|")
    task.fit(list(frame["y"]))
    pres = make_preprocessors(config)
    for spec in input_specs(config):
        pres[spec.name].fit(fit_values(spec, frame, tmp_path))
    examples, _ = make_examples(frame, input_specs(config), pres, config, tmp_path)
    examples, _ = attach_targets(examples, frame["y"], task, "y")
    model = build_model(config, pres, task)
    names = config.input_names()
    schedule = EncoderSchedule(
        {n: config.encoder_of(n).lr_mult for n in names},
        {n: config.encoder_of(n).freeze_epochs for n in names},
    )
    trainer = Trainer(
        model,
        task,
        config.training,
        schedule,
        tmp_path / "checkpoints",
        Console(quiet=True),
        show_progress=False,
    )
    loader = DataLoader(ExampleDataset(examples), batch_size=16, collate_fn=collate)
    return trainer, loader, loader


def _weights(trainer: Trainer, name: str) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.raw_model.encoders[name].parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_freeze_epochs_keeps_an_encoder_fixed_then_trains_it(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=1, patience=5)
    trainer.schedule.freeze_epochs = {"words": 1, "tabular": -1}
    trainer.cfg = TrainingConfig(**{**trainer.cfg.__dict__, "epochs": 2})
    trainer._setup(len(train))
    words0, tab0 = _weights(trainer, "words"), _weights(trainer, "tabular")
    trainer._train_epoch(train, 0, None)
    assert _same(words0, _weights(trainer, "words"))
    trainer._train_epoch(train, 1, None)
    assert not _same(words0, _weights(trainer, "words"))  # unfrozen from epoch 1
    assert _same(tab0, _weights(trainer, "tabular"))  # -1: frozen for the whole run
    head = [p for p in trainer.raw_model.head.parameters()]
    assert all(p.requires_grad for p in head)


def test_lr_multiplier_and_accumulation(tmp_path: Path) -> None:
    trainer, train, _ = _setup(tmp_path, epochs=1, accumulate=2, warmup_ratio=0.0)
    trainer.schedule.lr_mults = {"words": 0.1}
    trainer._setup(len(train))
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs["encoder:words/decay"] == lrs["fusion+head/decay"] * 0.1
    trainer._train_epoch(train, 0, None)
    assert trainer.step == 2  # 4 batches, one optimizer step every 2


def test_fit_logs_every_epoch_checkpoints_and_restores_the_best(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=3, patience=5, lr=0.01)
    result = trainer.fit(train, valid)
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert list(log["epoch"]) == [1, 2, 3]
    assert {"train_loss", "valid_loss", "accuracy", "lr"} <= set(log.columns)
    assert (tmp_path / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "checkpoints" / "best.safetensors").exists()
    best = int(log["accuracy"].idxmax())
    assert result.best_epoch == best or log["accuracy"][result.best_epoch] == log["accuracy"].max()
    assert "reached the configured 3 epoch(s)" in result.stop_reason


def test_early_stopping_stops_and_says_why(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=30, patience=1, lr=1e-9, warmup_ratio=0.0)
    result = trainer.fit(train, valid)
    assert len(result.history) < 30
    assert result.stop_reason.startswith("early stopping: accuracy did not improve for 1 epoch(s)")
