"""DDP through Fabric: 2 CPU processes (gloo) launched by the CLI match a single-process run with the same
global batch size, and rank 0 alone writes a complete model folder that loads and predicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import omnifuse

CONFIG = """
label: {column: label, task: multiclass}
columns:
  review: {type: text, encoder: {name: bow, embed_dim: 8, dropout: 0.0}}
  score: {type: numeric}
  kind: {type: categorical}
tabular: {name: tabular_mlp, embed_dim: 4, hidden_dim: 8, dropout: 0.0}
fusion: concat
head: {hidden_dim: 8, dropout: 0.0}
training: {epochs: 2, batch_size: BATCH, lr: 0.01, accelerator: cpu, modality_dropout: 0.0}
"""  # modality dropout draws its rows per rank, so it is off where the weights must match a single process
WORDS = [["good", "great", "fine"], ["bad", "awful", "poor"], ["odd", "meh", "so"]]


def _table(folder: Path, n: int = 90) -> Path:
    rng = np.random.default_rng(0)
    rows = [{"review": " ".join(rng.choice(WORDS[i % 3], 3)), "score": float(i % 3 + rng.normal(scale=0.7)),
             "kind": str(rng.choice(["x", "y"])), "label": ["pos", "neg", "mid"][i % 3]} for i in range(n)]
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


def _config(folder: Path, batch: int) -> Path:
    path = folder / f"config_{batch}.yaml"
    path.write_text(CONFIG.replace("BATCH", str(batch)))
    return path


def test_ddp_two_cpu_processes_match_single_process(tmp_path: Path) -> None:
    table = _table(tmp_path)
    # 72 training rows: global batches of 16 = 4 full + one of 8 (each rank gets half of every batch)
    omnifuse.train(_config(tmp_path, 16), train=table, out=tmp_path / "single", progress=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "omnifuse.cli"]
    done = subprocess.run(
        [*cli, "train", "-c", str(_config(tmp_path, 8)), "--train", str(table), "-o", str(tmp_path / "ddp"),
         "-q", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in done.stderr  # a second process really trained
    assert done.stderr.count("Saved the model") == 1  # only rank 0 reports
    single = load_file(tmp_path / "single/model.safetensors")
    ddp = load_file(tmp_path / "ddp/model.safetensors")
    assert single.keys() == ddp.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5)
    log_single = pd.read_csv(tmp_path / "single/train_log.csv")
    log_ddp = pd.read_csv(tmp_path / "ddp/train_log.csv")
    for column in ("train_loss", "valid_loss", "accuracy", "macro_f1"):  # metrics reduced over both ranks
        np.testing.assert_allclose(log_ddp[column], log_single[column], rtol=1e-5)
    rows = pd.read_csv(table).head(12)
    predictor = omnifuse.load(tmp_path / "ddp")
    np.testing.assert_allclose(predictor.predict_proba(rows).to_numpy(),
                               omnifuse.load(tmp_path / "single").predict_proba(rows).to_numpy(), atol=1e-5)
    assert (tmp_path / "ddp/checkpoints/last.safetensors").exists() and (tmp_path / "ddp/report.md").exists()


@pytest.mark.slow  # about 40 s: two DDP launches
def test_ddp_resume_continues_the_run(tmp_path: Path) -> None:
    table, config = _table(tmp_path), _config(tmp_path, 8)
    base = [sys.executable, "-m", "omnifuse.cli", "train", "-c", str(config), "--train", str(table), "-q",
            "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    full = subprocess.run([*base, "-o", str(tmp_path / "full")], capture_output=True, text=True, env=env)
    assert full.returncode == 0, full.stderr[-3000:]
    again = subprocess.run([*base, "-o", str(tmp_path / "full"), "--resume"], capture_output=True, text=True,
                           env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resumed from epoch 2" in again.stderr


STREAMED = """
label: {column: label, task: multiclass}
columns:
  review: {type: text, encoder: {name: bow, embed_dim: 8}}
  score: {type: numeric}
data: {streaming: true, stream_batch_rows: 16, stream_sample_rows: 40, stream_valid_rows: 30,
       on_bad_row: error}
training: {epochs: 2, batch_size: 8, accelerator: cpu}
"""


def test_a_bad_row_on_one_rank_stops_both_with_that_ranks_message(tmp_path: Path) -> None:
    from omnifuse.cli import BUG_LINE

    rng = np.random.default_rng(0)
    rows = [{"review": " ".join(rng.choice(WORDS[i % 3], 3)), "score": str(float(i % 3)),
             "label": ["pos", "neg", "mid"][i % 3]} for i in range(200)]
    rows[150]["score"] = "oops"  # in streamed batch 9 (rows 144-159): rank 1's shard, read by rank 1 only
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "c.yaml").write_text(STREAMED)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "omnifuse.cli", "train", "-c", str(tmp_path / "c.yaml"), "--train",
         str(tmp_path / "train.parquet"), "-o", str(tmp_path / "m"), "-q", "--devices", "2",
         "--strategy", "ddp", "--accelerator", "cpu"],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0
    assert "rank 1: error: column 'score' row 150: numeric column 'score': 'oops' is not a number" in text
    # rank 0 stops with rank 1's error (told at its next collective), not the transport's
    assert "error: DDP rank 1 failed, so every rank stopped: column 'score' row 150: numeric" in text
    assert done.returncode == 2 and BUG_LINE not in text and "Traceback" not in text


FAILING_RUN = '''
import json, os, sys, time
from pathlib import Path

import torch.distributed as dist

import omnifuse
from omnifuse.artifacts import folder
from omnifuse.errors import CheckpointError
from omnifuse.model import MultimodalModel
from omnifuse.training import checkpoint, loop

POINT, FAILING = sys.argv[1], int(sys.argv[2])
here = Path(sys.argv[3])
failed_at: list[float] = []


def fail(error: Exception) -> None:
    failed_at.append(time.time())
    raise error


def on_failing_rank(method, error, after_calls=1):
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if dist.get_rank() == FAILING and len(calls) == after_calls:
            fail(error)
        return method(*args, **kwargs)
    return wrapped


if POINT == "step":  # a forward error in the second training step of one rank, as a bad value would raise
    MultimodalModel.forward = on_failing_rank(MultimodalModel.forward, ValueError("bad value in the batch"),
                                              after_calls=2)
elif POINT == "validation":
    loop.Trainer.evaluate = on_failing_rank(loop.Trainer.evaluate, ValueError("bad value in validation"))
elif POINT == "checkpoint":  # only rank 0 writes checkpoints
    checkpoint.save_checkpoint = on_failing_rank(checkpoint.save_checkpoint, CheckpointError("disk full"))
elif POINT == "folder":  # only rank 0 writes the model folder
    folder.save_model = on_failing_rank(folder.save_model, OSError("no space left on device"))
rank = 0
try:
    omnifuse.train(here / "config.yaml", train=here / "train.csv", out=here / "model", progress=False)
except Exception as exc:
    rank = dist.get_rank()
    result = {"type": type(exc).__name__, "message": str(exc), "at": time.time(), "failed_at": failed_at}
    (here / f"rank{rank}.json").write_text(json.dumps(result))
if rank == FAILING:  # stays alive (a caller that caught the error) until the other rank has stopped
    deadline = time.time() + 45
    while not (here / f"rank{1 - FAILING}.json").exists() and time.time() < deadline:
        time.sleep(0.2)
'''


@pytest.mark.parametrize(("point", "failing", "error"), [
    ("step", 1, "ValueError: bad value in the batch"),
    ("validation", 1, "ValueError: bad value in validation"),
    ("checkpoint", 0, "disk full"),
    ("folder", 0, "OSError: no space left on device"),
])
def test_an_error_on_one_rank_stops_the_other_at_once_with_that_error(
        tmp_path: Path, point: str, failing: int, error: str) -> None:
    import json

    _table(tmp_path, n=60)
    config = CONFIG.replace("BATCH", "8").replace("modality_dropout: 0.0", "devices: 2, strategy: ddp")
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "run.py").write_text(FAILING_RUN)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), point, str(failing), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads((tmp_path / f"rank{failing}.json").read_text())
    other = json.loads((tmp_path / f"rank{1 - failing}.json").read_text())
    assert error in f"{failed['type']}: {failed['message']}"  # the failing rank raises its own error
    assert other["type"] == "PeerFailedError"
    assert f"DDP rank {failing} failed, so every rank stopped: {error}" in other["message"]
    # stopped within seconds, although the failing process lives on (without the agreement: 45 s)
    assert other["at"] - failed["failed_at"][0] < 10


def test_bad_rows_of_both_ranks_shards_are_listed_once_in_row_order_also_on_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [{"review": " ".join(rng.choice(WORDS[i % 3], 3)), "score": str(float(i % 3)),
             "label": ["pos", "neg", "mid"][i % 3]} for i in range(200)]
    # streamed batches of 16 rows go to ranks in turn: batch 2 (rows 32-47), 6 and 12 to rank 0, batches
    # 3 and 9 to rank 1; row 5 is in the validation rows, which rank 0 alone prepares
    bad = [5, 40, 60, 100, 101, 150, 199]
    for row in bad:
        rows[row]["score"] = "oops"
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "c.yaml").write_text(STREAMED.replace("on_bad_row: error", "on_bad_row: skip"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "omnifuse.cli", "train", "-c", str(tmp_path / "c.yaml"), "--train",
               str(tmp_path / "train.parquet"), "-o", str(tmp_path / "m"), "-q", "--devices", "2",
               "--strategy", "ddp", "--accelerator", "cpu"]
    for extra in ([], ["--resume"]):
        done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=180, env=env,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Skipped 6 bad row(s) of the streamed table" in " ".join((done.stdout + done.stderr).split())
        listed = pd.read_csv(tmp_path / "m" / "bad_rows.csv")
        assert listed["row"].tolist() == bad  # each once, in row order, whichever rank found it
        assert listed["table"].tolist() == [f"{tmp_path / 'train.parquet'} (first 30 rows: validation)"] + [
            str(tmp_path / "train.parquet")] * 6
        for name in ("last.safetensors", "best.safetensors"):  # a run killed in its first epoch: the
            (tmp_path / "m" / "checkpoints" / name).unlink()  # resume starts over and reads the rows again
