"""Presets on the bundled tables: the init-config defaults and ``--preset best --time-limit 600`` against the
classical baselines, on the same rows.

For each table the demos use (AV-Digits, seed 0: picture + spoken digit; Fashion, seed 0: picture + seller
description), the config `omnifuse init-config` writes is trained twice through ``omnifuse.train``: as
written (preset ``medium``) and with ``preset="best", time_limit=600`` (pretrained encoders where they suit
the columns, several fusions and seeds, a greedy ensemble chosen on the validation rows; the 600 s cover the
training of all members). The baselines are those the default run's report holds (fitted on the same rows).

Rows: ``presets_<table>_<preset>``: test accuracy of that model / the best baseline (goal >= 1.0); details
hold the fit seconds (whole ``train`` call: reading, preprocessing, feature passes, baselines, training,
saving), every baseline's accuracy and, for ``best``, the members trained and their ensemble weights. About
15 minutes on 2 cores; ``--quick`` runs AV-Digits only, with 2 epochs and a 30 s budget (a smoke run:
the accuracies mean nothing then).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_quality import default_config, with_changes
from common import CACHE_DIR, BenchResult, Settings

NAME = "presets"
GOAL = ">= 1.0"
TABLES = ("av_digits", "fashion")
TIME_LIMIT = 600.0


def _table(name: str) -> Path:
    from omnifuse import datasets

    builder = datasets.build_av_digits if name == "av_digits" else datasets.build_fashion
    return Path(builder(CACHE_DIR / f"presets_{name}", seed=0, progress=False))


def _fit(flat: dict[str, Any], folder: Path, out: Path, preset: str, time_limit: float) -> dict[str, Any]:
    """Trains through the public API; the test accuracy, the seconds and what metrics.json says."""
    from rich.console import Console

    import omnifuse
    from omnifuse.config.sections import Config

    started = time.perf_counter()
    omnifuse.train(Config.from_dict(flat), folder / "train.csv", folder / "valid.csv", folder / "test.csv",
                   out, preset=preset, time_limit=time_limit or None, progress=False,
                   console=Console(quiet=True))
    seconds = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    found: dict[str, Any] = {"accuracy": float(metrics["accuracy"]), "seconds": round(seconds, 1)}
    if (out / "ensemble.json").is_file():
        ensemble = json.loads((out / "ensemble.json").read_text(encoding="utf-8"))
        found["members"] = [{k: m.get(k) for k in ("fusion", "seed", "weight", "valid_score", "test_score")}
                            for m in ensemble.get("members", [])]
    return found | {"baselines": metrics.get("baselines")}


def _rows(table: str, models: dict[str, dict[str, Any]]) -> list[BenchResult]:
    baselines = models["medium"].pop("baselines") or {}
    results = baselines.get("results", [])
    models["best"].pop("baselines", None)
    best = max(results, key=lambda r: r["accuracy"])
    floor = float(best["accuracy"])
    scores = {r["name"]: r["accuracy"] for r in results}
    rows = []
    for preset, model in models.items():
        ours = model["accuracy"]
        note = f"fit {model['seconds']:.0f} s" + (f", {len(model['members'])} members" if "members" in model
                                                  else "")
        rows.append(BenchResult(f"presets_{table}_{preset}", f"test accuracy vs {best['name']}", ours, floor,
                                ours / floor, GOAL, {**model, "baselines": scores, "baseline": best["name"]},
                                note))
    return rows


def run(settings: Settings) -> list[BenchResult]:
    """Trains the defaults and preset best per table; two rows per table."""
    rows = []
    for table in TABLES[:1] if settings.quick else TABLES:
        folder = _table(table)
        flat = default_config(folder)
        if settings.quick:
            flat = with_changes(flat, {"training.epochs": 2})
        budget = 30.0 if settings.quick else TIME_LIMIT
        with tempfile.TemporaryDirectory(prefix="omnifuse_presets_") as tmp:
            limits = {"medium": 0.0, "best": budget}
            models = {preset: _fit(flat, folder, Path(tmp) / preset, preset, limit)
                      for preset, limit in limits.items()}
        rows += _rows(table, models)
    return rows
