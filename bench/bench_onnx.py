"""ONNX backend latency: onnxruntime against torch on the AV-Digits model, single rows and a batch.

The fused AV-Digits model (small_cnn image + mel_cnn audio, attention fusion; untrained: latency does not
depend on the weights) is saved, exported with ``omnifuse.export.onnx.export_onnx`` to ``DIR/model.onnx``
and loaded twice: ``omnifuse.load(dir)`` (torch) and ``omnifuse.load(dir, backend="onnx")``. Both sides
use the same number of intra-op threads (torch's). Rows, interleaved, medians:

- ``predict(one_row_dict)``: the whole single-row path (file decode + preprocessing are the same code);
- the bare forward of one prepared, collated row: torch ``model(...)`` under ``no_grad`` against
  ``OnnxBackend.run_batch``, the difference the backend makes;
- the same for a collated batch of the 32 test rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import AVSetup, BenchResult, Settings, av_digits_setup, interleaved, latency_stats_ms

NAME = "onnx"


def _rows(setup: AVSetup, count: int) -> list[dict[str, Any]]:
    import pandas as pd

    frame = pd.read_csv(setup.data / "test.csv").head(count)
    return [{name: row[name] for name in setup.config.input_names()} for row in frame.to_dict("records")]


def _predictors(setup: AVSetup, folder: Path) -> tuple[Any, Any]:
    """(torch predictor, ONNX predictor) of one saved, exported untrained model."""
    import omnifuse
    from omnifuse.artifacts.folder import save_model
    from omnifuse.build import build_model
    from omnifuse.export.onnx import export_onnx

    torch.manual_seed(0)
    model = build_model(setup.config, setup.preprocessors, setup.task)
    save_model(folder, setup.config, setup.preprocessors, setup.task, model)
    export_onnx(folder, folder / "model.onnx")
    onnx = omnifuse.load(folder, device="cpu", backend="onnx")
    assert onnx.onnx_backend is not None
    if onnx.onnx_backend.session.get_session_options().intra_op_num_threads != torch.get_num_threads():
        from omnifuse.export.backend import OnnxBackend

        onnx.onnx_backend = OnnxBackend(folder / "model.onnx", threads=torch.get_num_threads())
    return omnifuse.load(folder, device="cpu"), onnx


def _forwards(torch_side: Any, onnx_side: Any, rows: list[dict[str, Any]], base: Path) -> dict[str, Callable]:
    """Bare forwards of the prepared, collated rows: torch and onnxruntime."""
    from omnifuse.data.collate import collate

    batch = collate(torch_side.prepare(rows, base_dir=base))
    model, backend = torch_side.model, onnx_side.onnx_backend

    def torch_forward() -> Any:
        with torch.no_grad():
            return model(batch.inputs, batch.presence)

    return {"torch": torch_forward, "onnx": lambda: backend.run_batch(batch)}


def _row(name: str, metric: str, sides: dict[str, list[Any]], note: str, scale: float = 1.0) -> BenchResult:
    onnx, torch_ = (latency_stats_ms([s.wall for s in sides[k]]) for k in ("onnx", "torch"))
    p50 = (onnx["p50_ms"] * scale, torch_["p50_ms"] * scale)
    return BenchResult(name, metric, p50[0], p50[1], p50[0] / p50[1], "",
                       {"onnx": onnx, "torch": torch_, "threads": torch.get_num_threads()}, note)


def run(settings: Settings) -> list[BenchResult]:
    """Measures both backends; ratio = onnxruntime / torch (latency: lower is better)."""
    calls, warmup = (30, 5) if settings.quick else (200, 10)
    setup = av_digits_setup(192, 64)
    rows = _rows(setup, 32)  # the whole test split
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_onnx_") as tmp:
        torch_side, onnx_side = _predictors(setup, Path(tmp))
        one_row = {"torch": lambda: torch_side.predict(rows[0], base_dir=setup.data),
                   "onnx": lambda: onnx_side.predict(rows[0], base_dir=setup.data)}
        predict = interleaved(one_row, calls, warmup)
        single = interleaved(_forwards(torch_side, onnx_side, rows[:1], setup.data), calls, warmup)
        batch = interleaved(_forwards(torch_side, onnx_side, rows, setup.data), max(calls // 5, 5), 2)
    return [
        _row("onnx_predict_one_row_p50", "p50 ms", predict, f"{calls} predict(dict) calls, onnx vs torch"),
        _row("onnx_forward_one_row_p50", "p50 ms", single, "bare forward of 1 prepared row"),
        _row("onnx_forward_batch32_p50", "p50 ms", batch, "bare forward of 32 prepared rows"),
    ]
