"""Models that win: the init-config defaults against the classical baselines on the same rows.

For each AV-Digits table (the bundled one, seed 0, 600 training rows; and another draw, seed 1, 1,200 rows;
both test splits spoken with an accent never heard in training), the rows are prepared once and three models
are trained with the defaults `omnifuse init-config` writes (image-only, audio-only, fused), and the same
three with the defaults of the previous release (`mel_cnn` audio, attention fusion, no EMA, no augmentation,
no auxiliary heads). Each model is finished as ``omnifuse train`` finishes it (``workflows/finish.py``: the
linear read-out, the OOD gate, the temperature) before it is scored. The baselines (``omnifuse.baselines``:
pixels + HOG, MFCC statistics, both together, logistic regression tuned on validation) are fitted on the same
rows.

Rows: ``quality_<table>_<input>``: test accuracy of the default model / the best baseline of that input
(goal >= 1.0: the default wins); details hold the previous defaults' accuracy, fit seconds and the largest
epoch-to-epoch drop of the validation accuracy (the smoothness of the curve early stopping reads), before
and after. This benchmark trains 12 models and takes about 15 to 30 minutes on 2 cores; ``--quick`` runs
the bundled table only, with 4 epochs per model (a smoke run: the accuracies mean nothing then).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

from common import CACHE_DIR, BenchResult, Settings

NAME = "quality"
GOAL = ">= 1.0"
TABLES = {"bundled": {"seed": 0}, "draw1": {"seed": 1, "n_train": 1200}}
PREVIOUS = {  # what init-config wrote before issue 11 (and the training defaults then)
    "columns.audio.encoder": {"name": "mel_cnn"},
    "columns.audio.augment": "none",
    "columns.image.augment": "none",
    "fusion": {"name": "attention"},
    "head.hidden_dim": 128,
    "training.ema_decay": 0.0,
    "training.aux_loss": 0.0,
    "training.label_smoothing": 0.0,
    "training.modality_dropout": 0.0,
    "training.epochs": 20,
    "training.patience": 5,
}


def _table(name: str, settings: Settings) -> Path:
    from omnifuse.datasets import build_av_digits

    params = dict(TABLES[name])
    return Path(build_av_digits(CACHE_DIR / f"quality_{name}", progress=False, **params))


def default_config(folder: Path) -> dict[str, Any]:
    """The flat config `omnifuse init-config` writes for the table."""
    from omnifuse.data.io import read_table
    from omnifuse.workflows.init_config import build_config

    config, _ = build_config(read_table(folder / "train.csv"), "label")
    return config.to_dict()


def with_changes(flat: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(flat)
    for key, value in changes.items():
        node = out
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return out


def _largest_drop(history: list[dict[str, Any]]) -> float:
    scores = [float(h["accuracy"]) for h in history if "accuracy" in h]
    return max([0.0, *(a - b for a, b in zip(scores, scores[1:], strict=False))])  # 0: never dropped


def fit_on_rows(cfg: Any, data: Any, out: Path) -> dict[str, Any]:
    """Trains ``cfg`` on prepared rows; its test accuracy, fit seconds and largest validation drop."""
    import torch
    from lightning_fabric.utilities.seed import seed_everything
    from rich.console import Console

    from omnifuse.api import fit_prepared
    from omnifuse.training.batched_forward import run_model
    from omnifuse.workflows.compare import collate_rows
    from omnifuse.workflows.finish import finish_model
    from omnifuse.workflows.prepare import RunContext

    seed_everything(cfg.training.seed, verbose=False)
    started = time.perf_counter()
    model, result = fit_prepared(cfg, data, RunContext(out, Console(quiet=True), False))
    finish_model(cfg, data, model, Console(quiet=True))  # as omnifuse train: the read-out, the OOD gate
    seconds = time.perf_counter() - started
    logits, targets, _ = run_model(model, collate_rows(data.examples["test"]), torch.device("cpu"))
    assert targets is not None
    accuracy = float((logits.argmax(-1) == targets).float().mean())
    return {"accuracy": accuracy, "seconds": seconds, "largest_valid_drop": _largest_drop(result.history)}


def _models(flat: dict[str, Any], folder: Path, out: Path, quick: bool) -> tuple[dict[str, Any], Any]:
    """Prepares the table for ``flat`` and trains its image-only, audio-only and fused models."""
    from rich.console import Console

    from omnifuse.api import prepare_data
    from omnifuse.config.sections import Config
    from omnifuse.workflows.compare import restrict_to
    from omnifuse.workflows.prepare import RunContext

    if quick:
        flat = with_changes(flat, {"training.epochs": 4})
    cfg = Config.from_dict(flat)
    ctx = RunContext(out, Console(quiet=True), False)
    data = prepare_data(cfg, folder / "train.csv", folder / "valid.csv", folder / "test.csv", ctx)
    found = {}
    for which in ("image", "audio", "fused"):
        one = cfg if which == "fused" else restrict_to(cfg, which)
        one = dataclasses.replace(one, baseline=dataclasses.replace(one.baseline, enabled=False))
        found[which] = fit_on_rows(one, data, out / which)
    return found, data


def _rows(name: str, new: dict[str, Any], old: dict[str, Any],
          baselines: dict[str, Any]) -> list[BenchResult]:
    results = baselines["results"]
    rows = []
    for which in ("image", "audio", "fused"):
        pool = results if which == "fused" else [r for r in results if r["inputs"] == [which]]
        best = max(pool, key=lambda r: r["accuracy"])
        floor = float(best["accuracy"])
        details = {"default": new[which], "previous_default": old[which], "baseline": best["name"],
                   "baseline_accuracy": floor}
        note = (f"previous defaults {old[which]['accuracy']:.3f}; largest valid drop "
                f"{old[which]['largest_valid_drop']:.3f} -> {new[which]['largest_valid_drop']:.3f}; "
                f"fit {new[which]['seconds']:.0f} s vs {old[which]['seconds']:.0f} s")
        rows.append(BenchResult(f"quality_{name}_{which}", f"test accuracy vs {best['name']}",
                                new[which]["accuracy"], floor, new[which]["accuracy"] / floor, GOAL,
                                details, note))
    return rows


def run(settings: Settings) -> list[BenchResult]:
    """Trains the default and the previous-default models per table; one row per table and input."""
    import tempfile

    from omnifuse.baselines.run import run_baselines
    from omnifuse.config.sections import Config

    rows: list[BenchResult] = []
    for name in ["bundled"] if settings.quick else list(TABLES):
        folder = _table(name, settings)
        flat = default_config(folder)
        with tempfile.TemporaryDirectory(prefix="omnifuse_quality_") as tmp:
            new, data = _models(flat, folder, Path(tmp) / "new", settings.quick)
            old, _ = _models(with_changes(flat, PREVIOUS), folder, Path(tmp) / "old", settings.quick)
            baselines = run_baselines(Config.from_dict(flat), data.task, data.preprocessors, data.tables,
                                      data.examples, "test")
        rows += _rows(name, new, old, baselines)
    return rows
