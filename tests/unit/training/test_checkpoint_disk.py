"""Disk problems: stray temporary files, disk full while saving, unwritable or too-full output folders."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.training import checkpoint, state_file
from omnifuse.training.checkpoint import (
    LAST,
    CheckpointError,
    check_writable,
    ensure_free_space,
    load_checkpoint,
    save_checkpoint,
)


def _config() -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"x": {"type": "numeric"}, "words": {"type": "text", "encoder": {"name": "bow"}}},
            "fusion": "concat",
            "training": {"epochs": 3, "batch_size": 16, "patience": 10},
        }
    )


def _train(out: Path, **kwargs: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=48)
    frame = pd.DataFrame({"x": x, "words": [f"w{i % 4}" for i in range(48)], "y": np.where(x > 0, "a", "b")})
    omnifuse.train(_config(), train=frame, out=out, progress=False, **kwargs)


def test_stray_tmp_files_are_ignored_and_removed(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"epoch": 4})
    (tmp_path / f".{LAST}.k2j3.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".last.pt.old1.tmp").write_bytes(b"half an old checkpoint")
    (tmp_path / ".best.safetensors.x9.tmp").write_bytes(b"\x00\x01")
    state = load_checkpoint(tmp_path)
    assert state is not None and state["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


def test_stray_tmp_without_checkpoint_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / f".{LAST}.abc.tmp").write_bytes(b"garbage")
    assert load_checkpoint(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def _fail_second_checkpoint(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The checkpoint writer writes half a file and then fails with ENOSPC on the second checkpoint."""
    original, calls = state_file.save_file, [0]

    def save(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        if Path(filename).name.startswith(f".{LAST}."):
            calls[0] += 1
            if calls[0] == 2:
                Path(filename).write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
        original(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(state_file, "save_file", save)
    return calls


def test_disk_full_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_second_checkpoint(monkeypatch)
    folder = tmp_path / "m" / "checkpoints"
    with pytest.raises(
        CheckpointError, match=r"disk full .*checkpoints.*previous checkpoint .* is intact.*--resume"
    ) as info:
        _train(tmp_path / "m")
    assert info.value.__cause__ is not None and info.value.__cause__.errno == errno.ENOSPC  # type: ignore[attr-defined]
    assert not list(folder.glob("*.tmp"))  # no temporary file left behind
    state = load_checkpoint(folder)
    assert state is not None and state["epoch"] == 0  # the first epoch's checkpoint, loadable
    monkeypatch.undo()
    _train(tmp_path / "m", resume=True)  # after freeing space the run continues
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_disk_full_without_an_earlier_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state_file, "save_file", full)
    with pytest.raises(CheckpointError, match="no earlier checkpoint exists"):
        save_checkpoint(tmp_path, {"epoch": 0})
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(state_file, "save_file", broken)
    with pytest.raises(OSError, match="I/O error") as info:
        save_checkpoint(tmp_path, {"epoch": 0})
    assert not isinstance(info.value, CheckpointError)


def test_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(CheckpointError, match=r"'.*out' is not writable \(Permission denied\); fix its"):
        check_writable(tmp_path / "out")
    with pytest.raises(CheckpointError, match="is not writable"):
        _train(tmp_path / "out")


def test_output_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        CheckpointError, match=r"cannot create output folder .*file/sub.*choose another --out"
    ):
        _train(tmp_path / "file" / "sub")


def _usage(free_of: Any) -> Any:
    def usage(path: Any) -> Any:
        return shutil._ntuple_diskusage(10**12, 0, free_of(Path(path)))  # type: ignore[attr-defined]

    return usage


def test_too_little_space_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", _usage(lambda p: 10 * 1024**2))
    with pytest.raises(
        CheckpointError, match=r"not enough free disk space .*10.0 MB free, about 50.0 MB needed"
    ):
        _train(tmp_path / "m")
    assert not (tmp_path / "m" / "split.json").exists()  # nothing was done


def test_too_little_space_for_this_models_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # enough for the early 50 MB check on the folder, too little once the model's size is known
    monkeypatch.setattr(shutil, "disk_usage", _usage(lambda p: 100 if p.name == "checkpoints" else 10**9))
    with pytest.raises(CheckpointError, match=r"for the checkpoints of this model: 0.0 MB free"):
        _train(tmp_path / "m")
    assert not (tmp_path / "m" / "checkpoints" / LAST).exists()


def test_ensure_free_space_passes_with_room(tmp_path: Path) -> None:
    ensure_free_space(tmp_path, 1, "a test")
    assert checkpoint.MIN_FREE_BYTES == 50 * 1024**2
