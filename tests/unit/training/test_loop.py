"""Trainer: freezing schedule, lr multipliers, gradient accumulation, early stopping, logs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config, TrainingConfig
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
    assert (tmp_path / "checkpoints" / "last.safetensors").exists()
    assert (tmp_path / "checkpoints" / "best.safetensors").exists()
    best = int(log["accuracy"].idxmax())
    assert result.best_epoch == best or log["accuracy"][result.best_epoch] == log["accuracy"].max()
    assert "reached the configured 3 epoch(s)" in result.stop_reason


def test_early_stopping_stops_and_says_why(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=30, patience=1, lr=1e-9, warmup_ratio=0.0)
    result = trainer.fit(train, valid)
    assert len(result.history) < 30
    assert result.stop_reason.startswith("early stopping: accuracy did not improve for 1 epoch(s)")


def test_time_limit_stops_the_run_with_the_best_weights_and_says_so(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=50, patience=50, time_limit=1e-9)
    result = trainer.fit(train, valid)
    assert len(result.history) == 1  # the first validated epoch, cut short after one step
    assert result.stop_reason.startswith("reached training.time_limit (1e-09 s)")
    assert result.best_score is not None


def test_epoch_callback_sees_every_record_and_its_exception_ends_the_run(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=5, patience=50)
    seen: list[int] = []

    class Pruned(Exception):
        """What a tuner raises to prune a trial."""

    def callback(epoch: int, record: dict[str, object]) -> None:
        seen.append(epoch)
        assert "valid_loss" in record
        if epoch == 1:
            raise Pruned()

    trainer.epoch_callback = callback
    with pytest.raises(Pruned):
        trainer.fit(train, valid)
    assert seen == [0, 1]


def test_ema_validates_and_keeps_the_averaged_weights(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=3, patience=50, ema_decay=0.9)
    result = trainer.fit(train, valid)
    assert trainer.ema is not None and trainer.ema.updates == 3 * len(train)
    best = trainer.best_state
    assert best is not None and result.best_epoch >= 0
    ema_weights = {k: v for k, v in best.items() if k in trainer.ema.shadow}
    # the restored (best) weights are an average, not the raw weights of the last step
    assert any(not torch.equal(v, trainer.ema.shadow[k].cpu()) or result.best_epoch == 2
               for k, v in ema_weights.items())
    current = trainer.raw_model.state_dict()
    assert all(torch.equal(current[k].cpu(), v) for k, v in best.items())


def test_augmentation_runs_on_training_batches_only(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=1, patience=5)
    calls: list[int] = []

    class Count:
        def __call__(self, inputs: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
            calls.append(1)
            return inputs

    trainer.augment = {"words": Count()}  # type: ignore[dict-item]
    trainer.fit(train, valid)
    assert len(calls) == len(train)  # once per training batch, never during validation


def test_aux_loss_trains_one_head_per_input(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=1, patience=5)
    model = trainer.raw_model
    from omnifuse.heads.base import HEADS

    model.aux_heads = torch.nn.ModuleDict(
        {n: HEADS.get("binary")(e.output_dim, 2, 0, 0.0) for n, e in model.encoders.items()}
    )
    trainer.cfg = TrainingConfig(**{**trainer.cfg.__dict__, "aux_loss": 0.5})
    before = {n: p.detach().clone() for n, p in model.aux_heads.named_parameters()}
    trainer.fit(train, valid)
    after = dict(model.aux_heads.named_parameters())
    assert {n.split(".")[0] for n in before} == {"words", "tabular"}
    assert all(not torch.equal(before[n], after[n]) for n in before)


def test_restore_best_false_with_ema_keeps_the_final_average(tmp_path: Path) -> None:
    trainer, train, valid = _setup(tmp_path, epochs=2, patience=5, ema_decay=0.9, restore_best=False)
    trainer.fit(train, valid)
    assert trainer.ema is not None
    state = trainer.raw_model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trainer.ema.shadow.items())


def test_the_epoch_line_shows_the_monitored_metric_once() -> None:
    from omnifuse.training.loop import _epoch_line

    record = {"epoch": 3, "train_loss": 0.5, "valid_loss": 0.25, "accuracy": 0.875, "seconds": 1.0}
    assert _epoch_line(record, "accuracy") == ("epoch   3  train_loss 0.5000  valid_loss 0.2500  "
                                               "accuracy 0.8750  (1.0s)")
    assert _epoch_line(record, "loss") == "epoch   3  train_loss 0.5000  valid_loss 0.2500  (1.0s)"
