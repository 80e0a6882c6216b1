"""The baselines in reports: the top line (both wordings), the section, CSV rows, compare rows, reuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from omnifuse.baselines.report import (
    comparison_rows,
    report_parts,
    results_frame,
    section,
    summary_line,
    top_line,
    write_baseline_report,
)
from omnifuse.baselines.reuse import training_baselines


def _result(name: str, inputs: list[str], value: float) -> dict[str, Any]:
    return {"name": name, "inputs": inputs, "features": "f", "model": "logistic", "choice": "C=1",
            "features_s": 0.5, "fit_s": 0.25, "accuracy": value, "macro_f1": value - 0.01}


def _baselines(metric: str = "accuracy", mode: str = "max", **extra: Any) -> dict[str, Any]:
    results = [_result("image (pixels+HOG, logistic)", ["image"], 0.683),
               _result("audio (MFCC, logistic)", ["audio"], 0.937),
               _result("fused (linear)", ["audio", "image"], 0.968)]
    if metric == "rmse":
        results = [{**r, "rmse": 2.0 - r["accuracy"]} for r in results]
    return {"split": "test", "source": "data/test.csv", "metric": metric, "mode": mode,
            "rows": {"train": 1200, "valid": 300, "test": 300}, "seconds": 4.2, "results": results,
            "best": "fused (linear)" if mode == "max" else "fused (linear)", "notes": [], **extra}


def test_top_line_when_the_model_is_worse_names_the_fixes_and_the_inputs_that_beat_it() -> None:
    line = top_line({"accuracy": 0.873}, _baselines())
    assert line is not None
    worse = "model 0.873 vs best baseline 0.968 (fused linear): the model is worse than a linear baseline"
    assert worse in line
    assert "`omnifuse tune`" in line and "training.epochs" in line and "augment" in line
    assert "audio (MFCC, logistic) 0.937" in line and "image (pixels" not in line  # only those ahead


def test_top_line_when_the_model_wins_and_for_lower_is_better_metrics() -> None:
    line = top_line({"accuracy": 0.99}, _baselines())
    assert line == ("**Baseline check** (test accuracy): model 0.990 beats the best baseline 0.968 "
                    "(fused linear) by 0.022.")
    regression = _baselines("rmse", "min")  # fused: rmse 1.032, the lowest
    assert "beats the best baseline 1.032 (fused linear) by 0.032" in str(top_line({"rmse": 1.0}, regression))
    assert "the model is worse than a linear baseline" in str(top_line({"rmse": 1.1}, regression))
    assert "is no better than" in str(top_line({"accuracy": 0.968}, _baselines()))
    assert top_line({"accuracy": None}, _baselines()) is None


def test_section_table_csv_and_compare_rows(tmp_path: Path) -> None:
    baselines = _baselines(notes=["text: classical features skipped (no word or character n-gram)"])
    top, body = report_parts({"accuracy": 0.9, "macro_f1": 0.89}, baselines, tmp_path)
    assert top is not None and "beats" not in top
    assert "| **the model** | | | | | 0.900 | 0.890 | |" in body
    assert "| fused (linear) | audio+image | f | logistic | C=1 | 0.968 | 0.958 | 0.75 |" in body
    assert "![Baselines](plots/baselines.png)" in body and "- text: classical features skipped" in body
    with Image.open(tmp_path / "plots" / "baselines.png") as image:
        assert image.format == "PNG"
    frame = results_frame(baselines)
    assert list(frame.columns[:8]) == ["name", "inputs", "features", "model", "choice", "accuracy",
                                       "macro_f1", "features_s"]
    assert frame["inputs"].tolist() == ["image", "audio", "audio+image"]
    rows = comparison_rows(baselines, ["accuracy", "macro_f1"])
    assert rows[2]["method"] == "baseline: fused (linear)" and rows[2]["kind"] == "baseline"
    assert rows[2]["seed"] is None and rows[2]["train_s"] == 0.75 and rows[2]["macro_f1"] == 0.958
    empty = {**baselines, "results": [], "best": None, "notes": []}
    assert "no baseline could be fitted" in summary_line(empty)
    assert "Turn them off with `baseline.enabled: false`" in section(baselines)


def test_the_cli_report_files(tmp_path: Path) -> None:
    report = write_baseline_report(tmp_path, _baselines(), "multiclass")
    assert report.read_text(encoding="utf-8").startswith("# Baselines")
    assert json.loads((tmp_path / "baselines.json").read_text())["best"] == "fused (linear)"
    assert (tmp_path / "baselines.csv").read_text().startswith("name,inputs,features,model,choice,accuracy")
    assert (tmp_path / "plots" / "baselines.png").is_file()


def test_evaluate_reuses_the_training_baselines_and_says_where_they_were_scored(tmp_path: Path) -> None:
    assert training_baselines(tmp_path, "x.csv") is None  # no metrics.json
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "baselines": _baselines()}))
    same = training_baselines(tmp_path, "data/test.csv")
    other = training_baselines(tmp_path, "elsewhere.csv")
    assert same is not None and other is not None and same["reused"] is True
    assert same["notes"][0].endswith("the table evaluated here")
    assert "not on this table" in other["notes"][0]
    assert "baselines of the training run" in str(top_line({"accuracy": 0.5}, other))
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    assert training_baselines(tmp_path, "data/test.csv") is None
