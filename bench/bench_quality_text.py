"""Models that win, on real text: the init-config defaults against the classical baselines on WordNet glosses.

For three WordNet tables (``omnifuse.datasets.build_wordnet``, seeds 0, 1 and 3: 2,000 / 500 / 1,000 rows
of noun glosses in ten lexicographer fields; the defaults were developed on seed 2, which is not here), the
rows are prepared once with the config `omnifuse init-config` writes (the gloss read twice: the packaged
MiniLM frozen, and the ``gloss_words`` ``tfidf`` companion) and three models are trained: the defaults, the
MiniLM alone (the previous default) and the ``tfidf`` companion alone. The baselines (TF-IDF, MiniLM
embeddings, both; logistic regression tuned on validation) are fitted on the same rows.

Rows: ``quality_text_wordnet<seed>``: test accuracy of the default model / the best baseline (goal >= 1.0:
the default wins); details hold the other two models' accuracy and every baseline's. About 3 to 4 minutes
a table on 2 cores (most of it MiniLM's feature pass, once for the models and once for the baselines);
``--quick`` runs seed 0 with 4 epochs per model (a smoke run: the accuracies mean nothing then).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from bench_quality import default_config, fit_on_rows, with_changes
from common import CACHE_DIR, BenchResult, Settings

NAME = "quality_text"
GOAL = ">= 1.0"
SEEDS = (0, 1, 3)
MODELS = {"default": None, "minilm_alone": "gloss", "tfidf_alone": "gloss_words"}  # name: input kept


def _table(seed: int) -> Path:
    from omnifuse.datasets import build_wordnet

    return Path(build_wordnet(CACHE_DIR / f"quality_wordnet{seed}", seed=seed, progress=False))


def _models(flat: dict[str, Any], folder: Path, out: Path) -> tuple[dict[str, Any], Any]:
    """Prepares the table once and trains the default model and each of its inputs alone."""
    from rich.console import Console

    from omnifuse.api import prepare_data
    from omnifuse.config.sections import Config
    from omnifuse.workflows.compare import restrict_to
    from omnifuse.workflows.prepare import RunContext

    cfg = Config.from_dict(flat)
    ctx = RunContext(out, Console(quiet=True), False)
    data = prepare_data(cfg, folder / "train.csv", folder / "valid.csv", folder / "test.csv", ctx)
    found = {}
    for name, kept in MODELS.items():
        one = cfg if kept is None else restrict_to(cfg, kept)
        one = dataclasses.replace(one, baseline=dataclasses.replace(one.baseline, enabled=False))
        found[name] = fit_on_rows(one, data, out / name)
    return found, data


def _row(seed: int, models: dict[str, Any], baselines: dict[str, Any]) -> BenchResult:
    results = baselines["results"]
    best = max(results, key=lambda r: r["accuracy"])
    floor, ours = float(best["accuracy"]), models["default"]["accuracy"]
    details = {**models, "baselines": {r["name"]: r["accuracy"] for r in results}, "baseline": best["name"]}
    note = (f"MiniLM alone {models['minilm_alone']['accuracy']:.3f}, tfidf alone "
            f"{models['tfidf_alone']['accuracy']:.3f}; fit {models['default']['seconds']:.0f} s")
    return BenchResult(f"quality_text_wordnet{seed}", f"test accuracy vs {best['name']}", ours, floor,
                       ours / floor, GOAL, details, note)


def run(settings: Settings) -> list[BenchResult]:
    """Trains the three models per WordNet table; one row per table."""
    from omnifuse.baselines.run import run_baselines
    from omnifuse.config.sections import Config

    rows = []
    for seed in SEEDS[:1] if settings.quick else SEEDS:
        folder = _table(seed)
        flat = default_config(folder)
        if settings.quick:
            flat = with_changes(flat, {"training.epochs": 4})
        with tempfile.TemporaryDirectory(prefix="omnifuse_quality_text_") as tmp:
            models, data = _models(flat, folder, Path(tmp))
            baselines = run_baselines(Config.from_dict(flat), data.task, data.preprocessors, data.tables,
                                      data.examples, "test")
        rows.append(_row(seed, models, baselines))
    return rows
