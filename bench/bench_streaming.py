"""Streaming: peak memory of training over a 1,000,000-row Parquet table against a 100,000-row one.

Both tables are synthetic (a short text, two numbers, a category and a 3-class label; row groups of
50,000 rows) and built once under ``bench/.cache``. Each run is ``omnifuse.train`` with
``data.streaming: true`` in a fresh subprocess, so its peak RSS (``VmHWM`` of that process) is its
own: the whole label column is scanned for the classes, the preprocessors are fitted on the first
10,000 training rows, 1,000 rows are held out for validation, then the stream trains a fixed number of
steps (``training.steps_per_epoch``): a full pass over every row (about 4 minutes at 1,000,000 rows on
2 cores), or 50 steps with ``--quick``.
Goal: peak RSS at 1,000,000 rows <= 1.2 x the one at 100,000 rows (nothing grows with the table).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from common import CACHE_DIR, BenchResult, Settings, median

NAME = "streaming"
GOAL = "<= 1.2"
CONFIG = """
label: {column: label, task: multiclass}
columns:
  review: {type: text, encoder: {name: bow, embed_dim: 32}}
  price: {type: numeric}
  stars: {type: numeric}
  shop: {type: categorical}
tabular: {name: tabular_mlp, embed_dim: 8, hidden_dim: 32}
fusion: concat
data: {streaming: true, stream_batch_rows: 4096, stream_sample_rows: 10000, stream_valid_rows: 1000}
training: {epochs: 1, batch_size: 64, lr: 0.003, accelerator: cpu, steps_per_epoch: STEPS}
"""
CHILD = textwrap.dedent("""
    import json, sys, time
    import omnifuse
    started = time.perf_counter()
    omnifuse.train(sys.argv[1], train=sys.argv[2], out=sys.argv[3], overwrite=True, progress=False)
    # VmHWM: this process image's own peak RSS. ru_maxrss is not: Linux carries it over fork + exec, so a
    # child of a big parent (bench/run.py after other benchmarks) reports at least the parent's RSS.
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mib": int(hwm.split()[1]) / 1024, "seconds": time.perf_counter() - started}))
""")


def make_table(path: Path, rows: int, seed: int = 0) -> Path:
    """Writes (once) a synthetic Parquet table of ``rows`` rows with 50,000-row row groups."""
    if path.exists():
        return path
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array("good great fine bad awful poor odd meh so the a this item shop price fast slow".split())
    label = rng.integers(0, 3, rows)
    picks = rng.integers(0, len(words), (rows, 5))
    picks[:, 0] = label * 3 + rng.integers(0, 3, rows)  # one word that tells the class
    text = pd.Series(words[picks[:, 0]])
    for j in range(1, 5):
        text = text + " " + words[picks[:, j]]
    frame = pd.DataFrame({
        "review": text, "price": rng.gamma(2.0, 10.0, rows) + label, "stars": rng.normal(label, 1.0, rows),
        "shop": rng.choice(["north", "south", "east", "west"], rows),
        "label": np.array(["neg", "mid", "pos"])[label],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, row_group_size=50_000, index=False)
    tmp.rename(path)
    return path


def _run_child(config: Path, table: Path, out: Path) -> dict[str, Any]:
    """One streaming training in a fresh interpreter; its own peak RSS and wall seconds."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(config), str(table), str(out)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"streaming run on {table} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(settings: Settings) -> list[BenchResult]:
    """Peak RSS of streaming training at 1,000,000 and 100,000 rows (interleaved repeats, medians)."""
    steps, repeats = (50, 1) if settings.quick else (0, 1)  # 0: a full pass over every row (~5 min)
    small = make_table(CACHE_DIR / "stream_100k.parquet", 100_000)
    large = make_table(CACHE_DIR / "stream_1m.parquet", 1_000_000)
    config = CACHE_DIR / f"stream_config_{steps}.yaml"
    config.write_text(CONFIG.replace("STEPS", str(steps)), encoding="utf-8")
    runs: dict[str, list[dict[str, Any]]] = {"1m": [], "100k": []}
    for r in range(repeats):
        for name in ("1m", "100k") if r % 2 == 0 else ("100k", "1m"):
            table = large if name == "1m" else small
            runs[name].append(_run_child(config, table, CACHE_DIR / f"stream_model_{name}"))
    rss = {name: median([x["peak_rss_mib"] for x in results]) for name, results in runs.items()}
    secs = {name: median([x["seconds"] for x in results]) for name, results in runs.items()}
    details = {"runs": runs, "steps": steps, "batch_size": 64, "rows": {"1m": 1_000_000, "100k": 100_000},
               "train_seconds_median": secs, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    reads = "a full pass over every row" if steps == 0 else f"{steps} steps of 64 rows"
    note = f"fresh process each; {reads} after a full label scan"
    return [BenchResult("streaming_peak_rss_1m_vs_100k", "peak RSS MiB", rss["1m"], rss["100k"],
                        rss["1m"] / rss["100k"], GOAL, details, note)]
