"""A run interrupted and resumed with --resume ends with the weights of an uninterrupted one (CPU, seed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.errors import CheckpointError
from omnifuse.training.checkpoint import load_checkpoint
from omnifuse.training.loop import Trainer


def _config() -> Config:
    return Config.from_dict(
        {
            "label": {"column": "animal", "task": "multiclass"},
            "columns": {
                "note": {"type": "text", "encoder": {"name": "bilstm", "embed_dim": 16, "hidden_dim": 16}},
                "weight": {"type": "numeric"},
                "colour": {"type": "categorical"},
            },
            "fusion": "attention",
            "head": {"dropout": 0.2},
            "training": {"epochs": 4, "batch_size": 8, "patience": 10, "modality_dropout": 0.3},
        }
    )


def _last_weights(out: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(out / "checkpoints")
    assert state is not None
    assert state["epoch"] == 3
    return state["model"]  # type: ignore[no-any-return]


class Interrupted(RuntimeError):
    """Raised by the test to stop a run mid-way, as a crash would."""


def _crash_after(last: int, config: Config, train: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trains ``config`` into ``out`` and crashes right after epoch ``last`` (0-based) is checkpointed."""
    original = Trainer._save_checkpoint

    def crash(self: Trainer, epoch: int) -> None:
        original(self, epoch)
        if epoch == last:
            raise Interrupted("simulated crash")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_save_checkpoint", crash)
        with pytest.raises(Interrupted):
            omnifuse.train(config, train=train, out=out, progress=False)


def test_resume_reaches_the_same_weights(
    table_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = table_dir / "train.csv"
    omnifuse.train(_config(), train=train, out=tmp_path / "full", progress=False)

    _crash_after(1, _config(), train, tmp_path / "part", monkeypatch)
    assert not (tmp_path / "part" / "model.safetensors").exists()

    omnifuse.train(_config(), train=train, out=tmp_path / "part", resume=True, progress=False)
    for full, resumed in [
        (
            load_file(str(tmp_path / "full" / "model.safetensors")),
            load_file(str(tmp_path / "part" / "model.safetensors")),
        ),
        (_last_weights(tmp_path / "full"), _last_weights(tmp_path / "part")),  # the final epoch's weights
    ]:
        assert full.keys() == resumed.keys()
        for key in full:
            torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-6, msg=key)
    log = (tmp_path / "part" / "train_log.csv").read_text().strip().splitlines()
    assert len(log) == 1 + 4  # header + every epoch once


def _contrastive() -> Config:
    return Config.from_dict(
        {
            "label": {"column": "animal", "task": "contrastive"},
            "columns": {
                "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16, "channels": 1}},
                "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 16}},
            },
            "contrastive": {"columns": ["note", "photo"], "embed_dim": 16, "queue_size": 24},
            "training": {"epochs": 3, "batch_size": 16, "lr": 0.003, "patience": 10, "restore_best": False},
        }
    )


def test_a_resumed_contrastive_run_restores_its_queues(
    table_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the queues in the checkpoint, the resumed epoch would see no queued negatives and end with
    other weights than the uninterrupted run."""
    train = table_dir / "train.csv"
    omnifuse.train(_contrastive(), train=train, out=tmp_path / "full", progress=False)
    queues = load_checkpoint(tmp_path / "full" / "checkpoints")["task"]["queues"]  # type: ignore[index]
    assert {n: q["embeddings"].shape for n, q in queues.items()} == {"note": (24, 16), "photo": (24, 16)}

    _crash_after(0, _contrastive(), train, tmp_path / "part", monkeypatch)
    omnifuse.train(_contrastive(), train=train, out=tmp_path / "part", resume=True, progress=False)
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "part" / "model.safetensors"))
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_checkpoint_with_other_optimizer_groups_is_a_clear_error(
    table_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """training.fused_adamw puts channels-last conv weights in groups of their own: a checkpoint written
    without that split (an older omnifuse, or fused_adamw: false) cannot be resumed with it."""
    train = table_dir / "train.csv"
    plain = _contrastive()
    plain = dataclasses.replace(plain, training=dataclasses.replace(plain.training, fused_adamw=False))
    _crash_after(0, plain, train, tmp_path / "part", monkeypatch)
    with pytest.raises(CheckpointError, match=r"other parameter groups.*training.fused_adamw: false"):
        omnifuse.train(_contrastive(), train=train, out=tmp_path / "part", resume=True, progress=False)
    omnifuse.train(plain, train=train, out=tmp_path / "part", resume=True, progress=False)  # its own config
