"""Baselines end to end: in train's metrics.json and report.md, reused by evaluate, `omnifuse baseline`,
bad rows, and baseline.enabled: false."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Console
from typer.testing import CliRunner

import omnifuse
from omnifuse.api import _baselines, prepare_data
from omnifuse.baselines.standalone import run_baseline
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.workflows.prepare import RunContext

INPUTS = {"note", "photo", "sound", "tabular"}


def test_training_writes_baselines_to_metrics_and_starts_the_report_with_the_check(trained_dir: Path) -> None:
    metrics = json.loads((trained_dir / "metrics.json").read_text())
    baselines = metrics["baselines"]
    assert baselines["split"] == "test" and baselines["metric"] == "accuracy"
    assert baselines["rows"]["test"] == 24
    names = [r["name"] for r in baselines["results"]]
    assert set(names) == {"photo (pixels+HOG, logistic)", "sound (MFCC, logistic)", "note (TF-IDF, logistic)",
                          "tabular (raw columns, logistic)", "tabular (raw columns, gradient boosting)",
                          "fused (linear)"}
    fused = next(r for r in baselines["results"] if r["name"] == "fused (linear)")
    assert set(fused["inputs"]) == INPUTS and 0.0 <= fused["accuracy"] <= 1.0 and fused["fit_s"] >= 0
    report = (trained_dir / "report.md").read_text(encoding="utf-8")
    first = report.splitlines()[0]
    assert first.startswith("**Baseline check** (test accuracy): model ")
    assert ("beats the best baseline" in first) or ("vs best baseline" in first)
    assert "## Baselines" in report and (trained_dir / "plots" / "baselines.png").is_file()


def test_evaluate_reuses_the_training_baselines(trained_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    metrics = omnifuse.evaluate(trained_dir, table_dir / "test.csv", tmp_path, progress=False)
    assert metrics["baselines"]["reused"] is True
    assert metrics["baselines"]["notes"][0].endswith("the table evaluated here")
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert report.startswith("**Baseline check** (test accuracy, baselines of the training run): model ")
    other = omnifuse.evaluate(trained_dir, table_dir / "train.csv", tmp_path / "other", progress=False)
    assert "not on this table" in other["baselines"]["notes"][0]


def test_baseline_enabled_false_turns_them_off(trained_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    predictor = omnifuse.load(trained_dir)
    predictor.config.baseline.enabled = False
    metrics = omnifuse.evaluate(predictor, table_dir / "test.csv", tmp_path, progress=False)
    assert "baselines" not in metrics
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# Evaluation")
    cfg = Config.from_yaml(table_dir / "config.yaml")
    cfg.baseline.enabled = False
    ctx = RunContext(tmp_path / "prep", Console(quiet=True), False)
    ctx.out.mkdir()
    data = prepare_data(cfg, table_dir / "train.csv", None, None, ctx)
    assert _baselines(cfg, data, "valid", ctx) is None  # what train calls before writing its report


def test_the_baseline_command_end_to_end(table_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "floor"
    result = CliRunner().invoke(app, ["baseline", "--config", str(table_dir / "config.yaml"), "--train",
                                      str(table_dir / "train.csv"), "--test", str(table_dir / "test.csv"),
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    for name in ("baselines.json", "baselines.csv", "report.md", "split.json", "plots/baselines.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "baselines.json").read_text())
    assert saved["split"] == "test"
    assert saved["rows"] == {"train": 48, "valid": 12, "test": 24, "train_total": 48}
    table = pd.read_csv(out / "baselines.csv")
    assert "fused (linear)" in set(table["name"]) and table["accuracy"].between(0, 1).all()
    assert "fused (linear)" in result.output and "Baselines: best" in result.output
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Baselines")


def test_rows_the_model_rejects_are_skipped_by_the_baselines_too(table_dir: Path, tmp_path: Path) -> None:
    cfg = Config.from_yaml(table_dir / "config.yaml")
    cfg.data.on_bad_row = "skip"
    train = pd.read_csv(table_dir / "train.csv")
    train.loc[3, "photo"] = "img/does_not_exist.png"
    baselines = run_baseline(cfg, train, None, table_dir / "test.csv", tmp_path, base_dir=table_dir,
                             progress=False, console=Console(quiet=True))
    assert baselines["rows"]["train"] + baselines["rows"]["valid"] == 59
    assert "img/does_not_exist.png" in (tmp_path / "bad_rows.csv").read_text()
