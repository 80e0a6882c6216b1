"""Batch prediction throughput: ``Predictor.logits(table, num_workers=2)`` against the single-process path.

The AV-Digits model (small_cnn image + mel_cnn audio, attention fusion; untrained: throughput does not
depend on the weights) is saved and loaded with ``omnifuse.load``. The table is AV-Digits' train, valid and
test rows (PNG + WAV files) repeated to ``rows`` rows; both sides predict it at batch 64 (the Predictor's
batch size). The baseline preprocesses every row in this process and then runs the model
(``num_workers=0``); omnifuse's side decodes and preprocesses in DataLoader worker processes while the main
process runs the model, starting its workers afresh on every call (their start-up is in the timing).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import BenchResult, Settings, av_digits_setup, interleaved, median, paired_ratio

NAME = "batch_predict"
WORKERS = 2


def _table(setup: Any, rows: int) -> Any:
    import pandas as pd

    frame = pd.concat([pd.read_csv(setup.data / f"{s}.csv") for s in ("train", "valid", "test")])
    repeats = -(-rows // len(frame))
    return pd.concat([frame] * repeats, ignore_index=True).iloc[:rows][setup.config.input_names()]


def _predictor(setup: Any, folder: Path) -> Any:
    import torch

    import omnifuse
    from omnifuse.artifacts.folder import save_model
    from omnifuse.build import build_model

    torch.manual_seed(0)
    model = build_model(setup.config, setup.preprocessors, setup.task)
    save_model(folder, setup.config, setup.preprocessors, setup.task, model)
    return omnifuse.load(folder, device="cpu")


def run(settings: Settings) -> list[BenchResult]:
    """Times both sides interleaved; returns the rows/s row (workers against one process)."""
    import torch

    rows = 128 if settings.quick else 384
    setup = av_digits_setup(192, 64)
    table = _table(setup, rows)
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_batch_") as tmp:
        predictor = _predictor(setup, Path(tmp))
        same = torch.equal(predictor.logits(table, base_dir=setup.data),
                           predictor.logits(table, base_dir=setup.data, num_workers=WORKERS))
        samples = interleaved({
            "workers": lambda: predictor.logits(table, base_dir=setup.data, num_workers=WORKERS),
            "single": lambda: predictor.logits(table, base_dir=setup.data),
        }, 1 if settings.quick else 3, settings.warmup)
    wall = {side: [s.wall for s in samples[side]] for side in samples}
    rate = {side: rows / median(wall[side]) for side in wall}
    details = {"rows": rows, "batch_size": predictor.batch_size, "num_workers": WORKERS,
               "median_seconds": {side: median(w) for side, w in wall.items()},
               "identical_logits": same}
    ratio = paired_ratio(wall["single"], wall["workers"])  # throughput ratio = single time / workers time
    note = f"{rows} image+audio rows, batch 64, {WORKERS} workers vs one process; identical logits: {same}"
    return [BenchResult("batch_predict_workers", "rows/s", rate["workers"], rate["single"], ratio, "",
                        details, note)]
