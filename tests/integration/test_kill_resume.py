"""A training subprocess killed with SIGKILL at random points and resumed with --resume each time ends
with the weights and metrics of an uninterrupted run (CPU, fixed seed, one thread)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from omnifuse.training.checkpoint import LAST, load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")

CONFIG = """
label: {column: animal, task: multiclass}
columns:
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
  weight: {type: numeric}
  colour: {type: categorical}
fusion: attention
head: {dropout: 0.2}
training: {epochs: 6, batch_size: 4, patience: 10, modality_dropout: 0.3}
"""
KILLS = 3
RUN_TIMEOUT = 60.0


def _command(table_dir: Path, config: Path, out: Path, resume: bool) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "omnifuse.cli",
        "train",
        "--config",
        str(config),
        "--train",
        str(table_dir / "train.csv"),
        "--out",
        str(out),
        "--quiet",
    ]
    return cmd + (["--resume"] if resume else [])


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _kill_after_a_new_checkpoint(proc: subprocess.Popen[bytes], last: Path, delay: float) -> bool:
    """Waits until this run has replaced last.safetensors at least once, then SIGKILLs it after ``delay`` s.

    Returns whether the process was still running when killed.
    """
    before, deadline = _inode(last), time.monotonic() + RUN_TIMEOUT
    while _inode(last) in (None, before) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.002)
    time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=RUN_TIMEOUT)
    return alive


def _finish(proc: subprocess.Popen[bytes]) -> None:
    output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, output.decode(errors="replace")


TIMINGS = ("seconds", "features_s", "fit_s")  # wall-clock times in metrics.json["baselines"]


def _close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            if key not in TIMINGS:
                _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6), where
    else:
        assert a == b, where


def _assert_same_tensors(full: dict[str, torch.Tensor], resumed: dict[str, torch.Tensor]) -> None:
    assert full.keys() == resumed.keys()
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-6, msg=key)


def _last_model(out: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(out / "checkpoints")
    assert state is not None
    assert state["epoch"] == 5  # the sixth (final) epoch, 0-based
    return state["model"]  # type: ignore[no-any-return]


def test_sigkill_at_random_points_then_resume_matches_uninterrupted(table_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    full, part = tmp_path / "full", tmp_path / "part"
    _finish(_start(_command(table_dir, config, full, resume=False), tmp_path))

    rng = random.Random(1234)  # reproducible kill delays
    killed = 0
    for attempt in range(KILLS):
        proc = _start(_command(table_dir, config, part, resume=attempt > 0), tmp_path)
        killed += _kill_after_a_new_checkpoint(proc, part / "checkpoints" / LAST, rng.uniform(0, 0.15))
        assert (part / "checkpoints" / LAST).exists()
    assert killed >= 1, "every run finished before its kill; the test exercised nothing"
    _finish(_start(_command(table_dir, config, part, resume=True), tmp_path))

    _assert_same_tensors(
        load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    )
    _assert_same_tensors(_last_model(full), _last_model(part))
    _close(
        json.loads((full / "metrics.json").read_text()),
        json.loads((part / "metrics.json").read_text()),
        "metrics",
    )
    assert len((part / "train_log.csv").read_text().strip().splitlines()) == 1 + 6  # every epoch once
    assert not list((part / "checkpoints").glob("*.tmp"))  # stray temporary files were cleaned up
