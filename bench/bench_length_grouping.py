"""Fine-tuning a text encoder on batches grouped by length against random batches (issue 16).

The WordNet gloss table (``omnifuse.datasets.build_wordnet``, seed 0) is tokenized once for the packaged
all-MiniLM-L6-v2, fine-tuned (``lr_mult: 0.3``, no feature cache) for ``STEPS`` batches of 32 rows,
once with ``training.group_by_length: true`` (the default) and once with it off, interleaved. Timed: the
training epoch as ``train_log.csv`` records it (the ``STEPS`` optimizer steps and a validation pass over
``VALID_ROWS`` rows, the same for both sides), not the model's construction.

Rows: ``length_grouping_text_epoch``: epoch seconds, grouped / random (lower is better; goal <= 0.8 on
this table); details hold the padded / real token ratio of both sides' batches and the test accuracy
after the short epoch (it only shows that nothing broke). ``length_grouping_feature_pass``: the frozen
MiniLM's feature pass over the ``FEATURE_ROWS`` first training glosses (what a frozen encoder's feature
cache and batch prediction run), rows longest first (what ``cache_features`` and
``Predictor.run_examples`` do) against table order, batches of 64.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from common import CACHE_DIR, BenchResult, Settings, interleaved, median, paired_ratio

NAME = "length_grouping"
GOAL = "<= 0.8"
STEPS, QUICK_STEPS = 16, 4
VALID_ROWS = 64
FEATURE_ROWS = 512


def _config(steps: int) -> dict[str, Any]:
    return {
        "label": {"column": "label", "task": "multiclass"},
        "columns": {"gloss": {"type": "text", "encoder": {"name": "hf_text", "lr_mult": 0.3}}},
        "fusion": "concat",
        "training": {"epochs": 1, "batch_size": 32, "lr": 1e-3, "steps_per_epoch": steps,
                     "feature_cache": False, "accelerator": "cpu", "ema_decay": 0.0},
        "baseline": {"enabled": False},
    }


def _prepared(folder: Path, steps: int, out: Path) -> tuple[Any, Any]:
    from rich.console import Console

    from omnifuse.api import prepare_data
    from omnifuse.config.sections import Config
    from omnifuse.workflows.prepare import RunContext

    cfg = Config.from_dict(_config(steps))
    data = prepare_data(cfg, folder / "train.csv", folder / "valid.csv", folder / "test.csv",
                        RunContext(out, Console(quiet=True), False))
    examples = data.examples | {"valid": data.examples["valid"][:VALID_ROWS],
                                "test": data.examples["test"][:VALID_ROWS]}
    return cfg, dataclasses.replace(data, examples=examples)


def _fit(cfg: Any, data: Any, grouped: bool, out: Path) -> dict[str, float]:
    """One short fine-tuning run; its epoch seconds, padded / real ratio and test accuracy."""
    import pandas as pd
    from bench_quality import fit_on_rows

    one = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, group_by_length=grouped))
    found = fit_on_rows(one, data, out)
    log = pd.read_csv(out / "train_log.csv").iloc[0]
    return {"seconds": float(log["seconds"]), "padded": float(log["padded_gloss_input_ids"]),
            "accuracy": found["accuracy"]}


def _feature_pass(cfg: Any, data: Any, settings: Settings) -> BenchResult:
    """The frozen encoder's feature pass, longest first vs table order, interleaved."""
    from unittest import mock

    from omnifuse.build import build_encoder
    from omnifuse.training import feature_cache

    examples = data.examples["train"][:FEATURE_ROWS]
    encoder = build_encoder(cfg, "gloss", data.preprocessors["gloss"], None)
    sides = {"longest_first": lambda: feature_cache.cache_features(encoder, examples, "gloss", 64, "cpu")}

    def table_order() -> None:
        with mock.patch.object(feature_cache, "longest_first", lambda *a, **k: None):
            feature_cache.cache_features(encoder, examples, "gloss", 64, "cpu")

    sides["table_order"] = table_order
    samples = interleaved(sides, settings.repeats, settings.warmup)
    seconds = {name: [s.wall for s in values] for name, values in samples.items()}
    ratio = paired_ratio(seconds["longest_first"], seconds["table_order"])
    return BenchResult("length_grouping_feature_pass", "s/pass", median(seconds["longest_first"]),
                       median(seconds["table_order"]), ratio, "", {"rows": len(examples), "seconds": seconds},
                       f"frozen MiniLM over {len(examples)} glosses, batches of 64: longest first vs "
                       "table order")


def run(settings: Settings) -> list[BenchResult]:
    """Times both sides, interleaved; returns the result rows."""
    from omnifuse.datasets import build_wordnet

    steps = QUICK_STEPS if settings.quick else STEPS
    folder = Path(build_wordnet(CACHE_DIR / "quality_wordnet0", seed=0, progress=False))
    runs: dict[str, list[dict[str, float]]] = {"grouped": [], "random": []}
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_") as tmp:
        cfg, data = _prepared(folder, steps, Path(tmp) / "prep")
        feature_row = _feature_pass(cfg, data, settings)
        for i in range(settings.warmup + settings.repeats):
            for side in list(runs) if i % 2 == 0 else reversed(list(runs)):  # neither side always first
                found = _fit(cfg, data, side == "grouped", Path(tmp) / f"{side}{i}")
                if i >= settings.warmup:
                    runs[side].append(found)
    seconds = {side: [r["seconds"] for r in found] for side, found in runs.items()}
    ratio = paired_ratio(seconds["grouped"], seconds["random"])
    padded = {side: median([r["padded"] for r in found]) for side, found in runs.items()}
    details = {"steps": steps, "batch_size": 32, "valid_rows": VALID_ROWS, "seconds": seconds,
               "padded_per_real": padded,
               "accuracy": {side: median([r["accuracy"] for r in found]) for side, found in runs.items()}}
    note = (f"packaged MiniLM fine-tuned, {steps} steps of 32 WordNet glosses; padded / real tokens "
            f"{padded['grouped']:.2f} vs {padded['random']:.2f}")
    return [BenchResult("length_grouping_text_epoch", "s/epoch", median(seconds["grouped"]),
                        median(seconds["random"]), ratio, GOAL, details, note), feature_row]
