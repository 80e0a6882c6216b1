"""``omnifuse tune`` trials per hour with pruning (the default median pruner) against no pruning.

Both sides run the same study on the AV-Digits table (192 training rows, 64 validation rows; the demo's
fused small_cnn + mel_cnn model, made lighter, on the CPU): the same search space, the same seeded TPE
sampler and the same number of trials, so they draw the same trials in the same order (fewer than TPE's
10 random start-up trials), and the only difference is that the median pruner stops trials whose
validation accuracy is below the median of the earlier trials at the same epoch. One run per side (a
study is long; two rounds, sides swapped, with ``--repeats 4`` or more); wall clock of the whole
``omnifuse.tune`` call, preparation and the best model's report included. The best validation accuracy
of each side is recorded too: pruning buys speed, and the notes say what it cost.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from common import MEL_CNN_MODEL, BenchResult, Settings, av_digits_setup, median
from rich.console import Console

NAME = "tune"
SEARCH: dict[str, Any] = {
    "training.lr": {"loguniform": [1e-4, 3e-2]},
    "fusion.name": {"choice": ["concat", "attention"]},
    "head.dropout": {"uniform": [0.0, 0.5]},
    "columns.image.encoder.widths": {"choice": [[8, 16], [16, 32]]},
    "columns.audio.encoder.channels": {"int": [8, 16]},
}


def _sizes(settings: Settings) -> dict[str, int]:
    if settings.quick:
        return {"trials": 4, "epochs": 3, "rounds": 1}
    return {"trials": 8, "epochs": 5, "rounds": 1 if settings.repeats < 4 else 2}


def _config(epochs: int) -> Any:
    from omnifuse.config.sections import Config

    raw = av_digits_setup(192, 64, MEL_CNN_MODEL).config.to_dict()  # mel_cnn: the audio channels below
    raw["training"].update(epochs=epochs, patience=epochs, accelerator="cpu", modality_dropout=0.0)
    raw["columns"]["image"]["encoder"]["widths"] = [16, 32]  # a light model: many trials in a few minutes
    raw["columns"]["audio"]["encoder"]["channels"] = 16
    return Config.from_dict({**raw, "search": SEARCH})


def _study(pruner: str, trials: int, epochs: int) -> dict[str, Any]:
    """One ``omnifuse.tune`` call; its wall seconds, trial counts and best value."""
    import pandas as pd

    import omnifuse

    data, config = av_digits_setup(192, 64).data, _config(epochs)
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_tune_") as tmp:
        started = time.perf_counter()
        result = omnifuse.tune(config, data / "train.csv", data / "valid.csv", Path(tmp),
                               trials=trials, pruner=pruner, progress=False, console=Console(quiet=True))
        seconds = time.perf_counter() - started
        frame = pd.read_csv(result.trials_csv)
    return {"seconds": seconds, "best": result.best_value, "pruned": int((frame["state"] == "pruned").sum()),
            "trial_seconds": float(frame["seconds"].sum())}


def run(settings: Settings) -> list[BenchResult]:
    """Runs the study with and without pruning; returns the trials-per-hour row."""
    sizes = _sizes(settings)
    runs: dict[str, list[dict[str, Any]]] = {"median": [], "none": []}
    for r in range(sizes["rounds"]):
        for pruner in ("median", "none") if r % 2 == 0 else ("none", "median"):
            runs[pruner].append(_study(pruner, sizes["trials"], sizes["epochs"]))
    rate = {p: sizes["trials"] * 3600 / median([x["seconds"] for x in rs]) for p, rs in runs.items()}
    best = {p: max(x["best"] for x in rs) for p, rs in runs.items()}
    pruned = median([float(x["pruned"]) for x in runs["median"]])
    trial_time = {p: median([x["trial_seconds"] for x in rs]) for p, rs in runs.items()}
    note = (f"{sizes['trials']} trials x {sizes['epochs']} epochs, {pruned:.0f} pruned; best valid accuracy "
            f"{best['median']:.3f} with pruning vs {best['none']:.3f} without")
    details = {**sizes, "runs": runs, "best_valid_accuracy": best, "median_trial_seconds_total": trial_time,
               "trial_time_ratio": trial_time["none"] / trial_time["median"]}
    return [BenchResult("tune_trials_per_hour_pruning", "trials/h", rate["median"], rate["none"],
                        rate["median"] / rate["none"], "", details, note)]
