"""Ctrl-C during training: the first SIGINT stops after the current optimizer step and keeps the last
epoch-end checkpoint (resume is exact); a second SIGINT aborts at once; the old handler comes back."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.training.checkpoint import LAST, load_checkpoint
from omnifuse.training.early_stopping import EarlyStopping
from omnifuse.training.interrupt import GracefulInterrupt, TrainingInterrupted
from omnifuse.training.loop import Trainer

BATCHES = 4  # 64 rows, 20% validation, batch 13 -> 4 batches per epoch


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=64)
    words = [("up" if v > 0 else "down") + f" w{i % 5}" for i, v in enumerate(x)]
    return pd.DataFrame({"x": x, "words": words, "y": np.where(x > 0, "pos", "neg")})


def _config() -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"x": {"type": "numeric"}, "words": {"type": "text", "encoder": {"name": "bow"}}},
            "fusion": "concat",
            "head": {"dropout": 0.2},
            "training": {"epochs": 3, "batch_size": 13, "patience": 10, "modality_dropout": 0.3},
        }
    )


def _train(out: Path, **kwargs: Any) -> None:
    omnifuse.train(_config(), train=_frame(), out=out, progress=False, **kwargs)


def _sigint_at(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> list[int]:
    """Patches Trainer._train_step to send SIGINT to this process during the given calls (1-based)."""
    original, calls = Trainer._train_step, [0]

    def step(self: Trainer, batch: Any, accumulate_now: bool) -> float:
        calls[0] += 1
        if calls[0] in steps:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, accumulate_now)

    monkeypatch.setattr(Trainer, "_train_step", step)
    return calls


def test_graceful_interrupt_flags_then_aborts_and_restores_the_handler() -> None:
    previous, notes = signal.getsignal(signal.SIGINT), []
    with GracefulInterrupt(lambda: notes.append("note")) as guard:
        assert signal.getsignal(signal.SIGINT) != previous
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested and notes == ["note"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == previous


def test_first_sigint_stops_after_the_step_and_resume_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _train(tmp_path / "full")
    previous = signal.getsignal(signal.SIGINT)
    calls = _sigint_at(monkeypatch, {2 * BATCHES + 2})  # the 2nd step of the 3rd epoch
    with pytest.raises(
        TrainingInterrupted, match=r"Interrupted during epoch 3 .*epoch 2 .* is kept.*--resume"
    ):
        _train(tmp_path / "part")
    assert calls[0] == 2 * BATCHES + 2  # stopped right after the step that saw Ctrl-C
    assert signal.getsignal(signal.SIGINT) == previous
    state = load_checkpoint(tmp_path / "part/checkpoints")
    assert state is not None
    assert state["epoch"] == 1  # the epoch-end checkpoint of epoch 2 was not overwritten
    assert not (tmp_path / "part/model.safetensors").exists()
    monkeypatch.undo()

    _train(tmp_path / "part", resume=True)
    full, part = (
        load_file(str(tmp_path / "full/model.safetensors")),
        load_file(str(tmp_path / "part/model.safetensors")),
    )
    for key in full:
        torch.testing.assert_close(part[key], full[key], rtol=1e-5, atol=1e-6, msg=key)
    assert len((tmp_path / "part/train_log.csv").read_text().strip().splitlines()) == 1 + 3


def test_sigint_in_the_first_epoch_says_a_resume_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sigint_at(monkeypatch, {1})
    with pytest.raises(TrainingInterrupted, match="no epoch finished yet"):
        _train(tmp_path / "m")
    assert not (tmp_path / "m/checkpoints" / LAST).exists()


def test_second_sigint_aborts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = signal.getsignal(signal.SIGINT)
    calls = _sigint_at(monkeypatch, {1, 2})
    monkeypatch.setattr(Trainer, "_check_interrupt", lambda self, epoch: None)  # ignore the flag
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "m")
    assert calls[0] == 2
    assert signal.getsignal(signal.SIGINT) == previous


def test_resume_after_early_stopping_trains_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_gain_after_epoch_1(
        self: EarlyStopping, value: float, epoch: int, loss: float | None = None
    ) -> bool:
        if epoch == 0:
            return original(self, value, epoch, loss)
        self.bad_epochs += 1
        return False

    original = EarlyStopping.update
    monkeypatch.setattr(EarlyStopping, "update", no_gain_after_epoch_1)
    cfg = _config()
    cfg.training.patience = 1
    omnifuse.train(cfg, train=_frame(), out=tmp_path / "m", progress=False)
    log = (tmp_path / "m/train_log.csv").read_text()
    assert len(log.strip().splitlines()) == 1 + 2  # stopped early after epoch 2 of 3
    monkeypatch.undo()
    omnifuse.train(cfg, train=_frame(), out=tmp_path / "m", progress=False, resume=True)
    assert (tmp_path / "m/train_log.csv").read_text() == log  # the stopped run was not continued
    assert "early stopping" in (tmp_path / "m/metrics.json").read_text()
