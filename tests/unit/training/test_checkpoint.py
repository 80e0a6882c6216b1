"""Unit tests of atomic checkpoints and safetensors weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from omnifuse.training.checkpoint import (
    BEST,
    LAST,
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


def test_load_checkpoint_refuses_arbitrary_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save({"epoch": 1, "evil": Payload()}, tmp_path / LAST)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path)
    assert "pwned" not in capsys.readouterr().out  # the payload never ran


def test_load_checkpoint_refuses_custom_class_instance(tmp_path: Path) -> None:
    torch.save({"obj": Path("/x")}, tmp_path / LAST)  # a class outside the weights-only allow-list
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path)


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
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"k": "v"}
    assert [p.name for p in tmp_path.iterdir()] == [BEST]


def test_save_weights_does_not_touch_the_source(tmp_path: Path) -> None:
    weight = torch.ones(2, requires_grad=True)
    save_weights(tmp_path / "w.safetensors", {"w": weight})
    assert weight.requires_grad and torch.equal(weight.detach(), torch.ones(2))
