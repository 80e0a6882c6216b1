"""Temperature scaling end to end: fitted on the validation rows, saved, and used by every probability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.ensemble.best import train_best
from omnifuse.ensemble.predictor import EnsemblePredictor
from omnifuse.workflows.presets import resolve_preset

from .conftest import CONFIG_YAML, make_table


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    make_table(folder, 60, seed=0).to_csv(folder / "train.csv", index=False)
    valid = make_table(folder, 30, seed=1)  # >= 20 rows: calibrated
    # a fifth of the labels moved to the next class: rows the model is sure of and gets wrong
    classes = sorted(valid["animal"].unique())
    wrong = valid.index % 5 == 0
    valid.loc[wrong, "animal"] = [classes[(classes.index(c) + 1) % 3] for c in valid.loc[wrong, "animal"]]
    valid.to_csv(folder / "valid.csv", index=False)
    make_table(folder, 24, seed=2).to_csv(folder / "test.csv", index=False)
    return folder


def _train(tables: Path, out: Path, calibrate: bool) -> Path:
    config = yaml.safe_load(CONFIG_YAML)
    config["training"]["calibrate"] = calibrate
    (out.parent / f"config_{calibrate}.yaml").write_text(yaml.safe_dump(config))
    omnifuse.train(out.parent / f"config_{calibrate}.yaml", train=tables / "train.csv",
                   valid=tables / "valid.csv", test=tables / "test.csv", out=out, progress=False)
    return out


def test_the_saved_model_reports_calibrated_probabilities(tables: Path, tmp_path: Path) -> None:
    folder = _train(tables, tmp_path / "model", calibrate=True)
    predictor = omnifuse.load(folder)
    temperature = predictor.task.temperature
    assert temperature != 1.0 and 0.05 < temperature < 20.0  # fitted, inside the search range
    frame = pd.read_csv(tables / "test.csv").drop(columns=["animal"])
    logits = predictor.logits(frame, base_dir=tables).numpy()  # (N, C)
    scaled = np.exp(logits / temperature - (logits / temperature).max(axis=1, keepdims=True))
    expected = scaled / scaled.sum(axis=1, keepdims=True)
    proba = predictor.predict_proba(frame, base_dir=tables).to_numpy()  # (N, C)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert predictor.predict(frame, base_dir=tables) == [
        predictor.task.classes[i] for i in logits.argmax(axis=1)]  # the top class does not move
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] == pytest.approx(temperature)
    assert metrics["calibration"]["ece"] == pytest.approx(metrics["ece"])
    assert 0.0 <= metrics["calibration"]["ece_uncalibrated"] <= 1.0
    report = (folder / "report.md").read_text()
    assert "## Calibration" in report and f"softmax(logits / {temperature:.3f})" in report
    assert (folder / "plots" / "reliability.png").is_file()
    again = omnifuse.evaluate(folder, tables / "test.csv", progress=False)
    assert again["calibration"] == pytest.approx(metrics["calibration"])


def test_calibrate_false_keeps_the_plain_softmax(tables: Path, tmp_path: Path) -> None:
    folder = _train(tables, tmp_path / "model", calibrate=False)
    predictor = omnifuse.load(folder)
    assert predictor.task.temperature == 1.0 and "temperature" not in predictor.task.state_dict()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert "calibration" not in metrics and "ece" in metrics
    assert "## Calibration" not in (folder / "report.md").read_text()


def test_best_preset_members_are_calibrated_and_the_ensemble_averages_them(tables: Path,
                                                                           tmp_path: Path) -> None:
    raw = yaml.safe_load(CONFIG_YAML)
    raw["columns"] |= {"sound": {"type": "ignore"}, "note": {"type": "ignore"}}
    raw["training"]["epochs"] = 2
    plan = resolve_preset(Config.from_dict(raw), "best")
    plan.members = plan.members[:2]  # two seeds of the config's fusion
    out = tmp_path / "ensemble"
    train_best(plan, tables / "train.csv", tables / "valid.csv", tables / "test.csv", out, progress=False,
               console=Console(quiet=True))
    ensemble = omnifuse.load(out)
    assert isinstance(ensemble, EnsemblePredictor) and "temperature" not in ensemble.task.state_dict()
    info = json.loads((out / "ensemble.json").read_text())
    weights = {m["path"]: m["weight"] for m in info["members"] if m["weight"] > 0}
    members = {path: omnifuse.load(out / path) for path in weights}
    assert all(m.task.temperature != 1.0 for m in members.values())  # each fitted on the validation rows
    expected = sum(w * members[p].predict_proba(tables / "test.csv").to_numpy()
                   for p, w in weights.items()) / sum(weights.values())
    probs = ensemble.predict_proba(tables / "test.csv").to_numpy()  # (N, C)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
