"""Single-row predict latency: ``Predictor.predict(one_row_dict)`` against the bare model forward.

The fused AV-Digits model (small_cnn image + mel_cnn audio, attention fusion; untrained: latency does not
depend on the weights) is saved with ``omnifuse.artifacts.folder.save_model`` and loaded with
``omnifuse.load``.
One test row ``{"image": "images/test_0.png", "audio": "audio/test_0.wav"}`` (paths relative to the
table's folder) is predicted ~200 times; the floor is the forward of the loaded model on that row's
already-prepared, already-collated tensors under ``torch.no_grad()``.

``predict`` also decodes the PNG and WAV files and makes the log-mel features, which the floor does not,
so the breakdown times each stage of ``predict`` on its own, in the order ``Predictor._one_row`` (the
single-row path: no records list, no batch list) runs them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import (
    AVSetup,
    BenchResult,
    Sample,
    Settings,
    av_digits_setup,
    interleaved,
    latency_stats_ms,
)

NAME = "predict_latency"
GOAL = "<= 1.5"


def _first_test_row(setup: AVSetup) -> dict[str, Any]:
    import pandas as pd

    row = pd.read_csv(setup.data / "test.csv").iloc[0].to_dict()
    return {name: row[name] for name in setup.config.input_names()}


def _stages(predictor: Any, row: dict[str, Any], base_dir: Path) -> dict[str, Callable[[], Any]]:
    """Each step of ``Predictor.predict`` for one row as its own callable (inputs made beforehand)."""
    from omnifuse.data.collate import collate
    from omnifuse.data.dataset import examples_from_records, input_specs
    from omnifuse.inference.rows import check_records, to_records
    from omnifuse.training.batched_forward import run_model

    cfg, specs, pres = predictor.config, input_specs(predictor.config), predictor.preprocessors
    records, folder = to_records(row, base_dir)
    examples, _ = examples_from_records(enumerate(records), specs, pres, cfg, folder)
    batch = collate(examples)
    device = predictor.device
    logits = run_model(predictor.model, [batch], device)[0]
    file_stages = {f"  decode+preprocess {spec.name}": _preprocess_one(predictor, spec.name, row, folder)
                   for spec in specs}
    return {
        "rows -> records + column check": lambda: check_records(to_records(row, base_dir)[0], cfg),
        "file decode + preprocess (examples_from_records)":
            lambda: examples_from_records(enumerate(records), specs, pres, cfg, folder),
        **file_stages,
        "collate()": lambda: collate(examples),
        "forward (run_model: to device, inference_mode)": lambda: run_model(predictor.model, [batch], device),
        "decode logits (task.decode)": lambda: predictor.task.decode(logits),
    }


def _preprocess_one(predictor: Any, name: str, row: dict[str, Any], folder: Path) -> Callable[[], Any]:
    from omnifuse.data.io import resolve_path

    path = resolve_path(str(row[name]), folder)
    return lambda: predictor.preprocessors[name](path)


def _floor(predictor: Any, row: dict[str, Any], base_dir: Path) -> Callable[[], Any]:
    """The bare forward of the loaded model on the row's prepared, collated tensors."""
    from omnifuse.data.collate import collate
    from omnifuse.data.dataset import examples_from_records, input_specs
    from omnifuse.inference.rows import to_records

    records, folder = to_records(row, base_dir)
    examples, _ = examples_from_records(enumerate(records), input_specs(predictor.config),
                                        predictor.preprocessors, predictor.config, folder)
    batch = collate(examples)
    model = predictor.model

    def forward() -> Any:
        with torch.no_grad():
            return model(batch.inputs, batch.presence)
    return forward


def _load_predictor(setup: AVSetup, folder: Path) -> Any:
    import omnifuse
    from omnifuse.artifacts.folder import save_model
    from omnifuse.build import build_model

    torch.manual_seed(0)
    model = build_model(setup.config, setup.preprocessors, setup.task)
    save_model(folder, setup.config, setup.preprocessors, setup.task, model)
    return omnifuse.load(folder, device="cpu")


def _latency_row(name: str, stat: str, predict: dict[str, float], floor: dict[str, float],
                 details: dict[str, Any], note: str) -> BenchResult:
    ratio, metric = predict[stat] / floor[stat], f"{stat.split('_')[0]} ms"
    return BenchResult(name, metric, predict[stat], floor[stat], ratio, GOAL, details, note)


def run(settings: Settings) -> list[BenchResult]:
    """Measures predict against the floor, then each stage of predict; returns the result rows."""
    calls, warmup = (40, 5) if settings.quick else (200, 10)
    setup = av_digits_setup(192, 64)
    row = _first_test_row(setup)
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_model_") as tmp:
        predictor = _load_predictor(setup, Path(tmp))
        main = interleaved({"predict": lambda: predictor.predict(row, base_dir=setup.data),
                            "forward": _floor(predictor, row, setup.data)}, calls, warmup)
        stages = interleaved(_stages(predictor, row, setup.data), calls, warmup)
    predict, floor = _ms(main["predict"]), _ms(main["forward"])
    breakdown = {stage: _ms(samples) for stage, samples in stages.items()}
    preprocess = breakdown["file decode + preprocess (examples_from_records)"]["p50_ms"]
    details = {"predict": predict, "forward": floor, "breakdown_ms": breakdown, "row": row,
               "predict_minus_preprocess_p50_ms": predict["p50_ms"] - preprocess}
    overhead, floor_p50 = predict["p50_ms"] - preprocess, floor["p50_ms"]
    return [
        _latency_row("predict_latency_p50", "p50_ms", predict, floor, details, f"{calls} calls of one row"),
        _latency_row("predict_latency_p99", "p99_ms", predict, floor, {}, "same calls"),
        BenchResult("predict_minus_decode_p50", "p50 ms", overhead, floor_p50, overhead / floor_p50, "", {},
                    "predict p50 less decode+preprocess p50"),
    ]


def _ms(samples: list[Sample]) -> dict[str, float]:
    return latency_stats_ms([s.wall for s in samples])
