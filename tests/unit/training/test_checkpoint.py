"""Unit tests of atomic checkpoints and safetensors weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from omnifuse.errors import CheckpointError
from omnifuse.training.checkpoint import (
    BEST,
    LAST,
    LEGACY_LAST,
    atomic_write,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)


class Payload:
    """An arbitrary Python object: must never be unpickled from a checkpoint."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_atomic_write_replaces_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "f.txt"
    atomic_write(path, lambda tmp: tmp.write_text("one"))
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half writ")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left behind


def test_atomic_write_failure_without_old_file(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"

    def broken(tmp: Path) -> None:
        raise OSError("nope")

    with pytest.raises(OSError, match="nope"):
        atomic_write(path, broken)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {
        "model": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)},
        "epoch": 3,
        "history": [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": float("nan")}],
        "early": {"monitor": "accuracy", "best": None, "best_epoch": -1},
        "rng": torch.get_rng_state(),
        "flags": (True, False),
    }
    path = save_checkpoint(tmp_path / "ckpt", state)
    assert path == tmp_path / "ckpt" / LAST
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded is not None
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])  # type: ignore[index]
    assert loaded["model"]["b"].dtype == torch.int64
    assert loaded["epoch"] == 3
    assert loaded["history"][0] == {"epoch": 1, "loss": 0.5}
    assert loaded["early"] == {"monitor": "accuracy", "best": None, "best_epoch": -1}
    assert torch.equal(loaded["rng"], state["rng"])  # type: ignore[arg-type]
    assert tuple(loaded["flags"]) == (True, False)


def test_load_checkpoint_absent_is_none(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None


def test_a_pickle_is_never_loaded_as_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"epoch": 1, "evil": Payload()}, tmp_path / LEGACY_LAST)  # an old (or forged) last.pt
    with pytest.raises(CheckpointError, match=r"last.pt was written by an older omnifuse \(a torch pickle "
                       r"archive, which this version does not read\); start the run again without --resume"):
        load_checkpoint(tmp_path)
    torch.save({"epoch": 1, "evil": Payload()}, tmp_path / LAST)  # a pickle under the new name
    with pytest.raises(CheckpointError, match=r"last.safetensors' is not readable .*without --resume"):
        load_checkpoint(tmp_path)
    assert "pwned" not in capsys.readouterr().out  # the payload never ran


def test_optimizer_and_scheduler_state_round_trip_exactly(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    for _ in range(3):
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "history": [{"loss": np.float32(0.25), "epoch": np.int64(2)}]}
    save_checkpoint(tmp_path, state)
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded["history"] == [{"loss": 0.25, "epoch": 2}]
    assert set(loaded["optimizer"]["state"]) == {0, 1}  # int keys come back as ints
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    fresh.load_state_dict(loaded["optimizer"])
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(fresh.state_dict()["state"][0][key], optimizer.state_dict()["state"][0][key])
    betas = [[list(g["betas"]) for g in o.param_groups] for o in (fresh, optimizer)]
    assert betas[0] == betas[1]
    assert loaded["scheduler"] == scheduler.state_dict()


def test_a_checkpoint_is_a_safetensors_file_with_its_state_as_json(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"epoch": 2, "model": {"w": torch.zeros(2)}})
    with safe_open(str(tmp_path / LAST), framework="pt") as handle:
        assert list(handle.keys()) == ["/model/w"]
        assert json.loads(handle.metadata()["omnifuse_state"]) == {
            "epoch": 2, "model": {"w": {"__tensor__": "/model/w"}}}


def test_state_that_is_not_plain_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"training state at /early/when holds a PosixPath"):
        save_checkpoint(tmp_path, {"early": {"when": Path("/x")}})
    assert not (tmp_path / LAST).exists()


def test_weights_round_trip_with_metadata(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    state = {
        "a": base.t(),
        "b": base[0],
        "c": torch.tensor([1, 2], dtype=torch.int32),
    }  # non-contiguous, shared
    path = tmp_path / BEST
    save_weights(path, state, {"k": "v"})
    loaded = load_weights(path)
    assert set(loaded) == {"a", "b", "c"}
    for key, value in state.items():
        assert torch.equal(loaded[key], value)
        assert loaded[key].device.type == "cpu"
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"k": "v"}
    assert [p.name for p in tmp_path.iterdir()] == [BEST]


def test_save_weights_does_not_touch_the_source(tmp_path: Path) -> None:
    weight = torch.ones(2, requires_grad=True)
    save_weights(tmp_path / "w.safetensors", {"w": weight})
    assert weight.requires_grad and torch.equal(weight.detach(), torch.ones(2))
