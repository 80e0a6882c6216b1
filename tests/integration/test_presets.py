"""Presets end to end on the small real table: the time limit, fast, and the best preset's ensemble folder
(save -> load -> predict, CLI predict / evaluate, refusals, tampering)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import omnifuse
from omnifuse.artifacts.folder import load_model
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.ensemble.best import train_best
from omnifuse.ensemble.predictor import EnsemblePredictor
from omnifuse.errors import DataError, ModelDirError
from omnifuse.workflows.presets import resolve_preset

runner = CliRunner()
CONFIG: dict[str, Any] = {  # image + tabular: the cheapest inputs of the table
    "label": {"column": "animal", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16, "channels": 1,
                                               "widths": [8, 16]}},
        "weight": {"type": "numeric"},
        "colour": {"type": "categorical"},
        "note": {"type": "ignore"},
        "sound": {"type": "ignore"},
    },
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.003, "patience": 2},
}


def _config(tmp_path: Path, **training: Any) -> Path:
    raw = {**CONFIG, "training": {**CONFIG["training"], **training}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def ensemble_dir(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A best-preset ensemble of two members (concat and late, seed 0), 2 epochs each."""
    plan = resolve_preset(Config.from_dict(CONFIG), "best")
    plan.members = [m for m in plan.members if m.name in ("concat-seed0", "late-seed0")]
    out = tmp_path_factory.mktemp("ensemble") / "model"
    train_best(plan, table_dir / "train.csv", None, table_dir / "test.csv", out, progress=False,
               console=Console(quiet=True))
    return out


def test_the_time_limit_stops_training_and_says_why(table_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, epochs=1000, patience=1000)
    console = Console(record=True, width=200)
    omnifuse.train(config, table_dir / "train.csv", out=tmp_path / "model", time_limit=1.0, progress=False,
                   console=console)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["stop_reason"].startswith("reached training.time_limit (1 s)")
    assert len(pd.read_csv(tmp_path / "model" / "train_log.csv")) < 1000
    assert "reached training.time_limit" in console.export_text()
    assert yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())["training"]["time_limit"] == 1.0


def test_cli_fast_caps_the_default_epochs(table_dir: Path, tmp_path: Path) -> None:
    raw = {**CONFIG, "training": {"batch_size": 16, "lr": 0.003}}  # epochs and patience left at defaults
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "config.yaml"), "--train",
                                 str(table_dir / "train.csv"), "--out", str(tmp_path / "model"), "--quiet",
                                 "--preset", "fast"])
    assert result.exit_code == 0, result.output
    assert "preset fast: training.epochs: 40 -> 10" in " ".join(result.output.split())
    saved = yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())
    assert (saved["preset"], saved["training"]["epochs"], saved["training"]["patience"]) == ("fast", 10, 3)
    assert 1 <= len(pd.read_csv(tmp_path / "model" / "train_log.csv")) <= 10


def test_ensemble_round_trip_averages_its_members(ensemble_dir: Path, table_dir: Path) -> None:
    predictor = omnifuse.load(ensemble_dir)
    assert isinstance(predictor, EnsemblePredictor)
    info = json.loads((ensemble_dir / "ensemble.json").read_text())
    weights = {m["path"]: m["weight"] for m in info["members"] if m["weight"] > 0}
    assert weights and info["metric"] == "accuracy" and len(info["members"]) == 2
    probs = predictor.predict_proba(table_dir / "test.csv")  # (N, 3) DataFrame
    expected = sum(w * omnifuse.load(ensemble_dir / p).predict_proba(table_dir / "test.csv").to_numpy()
                   for p, w in weights.items()) / sum(weights.values())
    assert np.allclose(probs.to_numpy(), expected, atol=1e-5)
    assert list(probs.columns) == ["cat", "dog", "owl"]
    predictions = predictor.predict(table_dir / "test.csv")
    assert predictions == [probs.columns[i] for i in probs.to_numpy().argmax(axis=1)]
    row = pd.read_csv(table_dir / "test.csv").iloc[0].to_dict()
    assert predictor.predict(row, base_dir=table_dir) == predictions[0]  # one dict -> one label
    one = predictor.predict_proba(row, base_dir=table_dir)
    assert np.allclose(list(one.values()), probs.iloc[0], atol=1e-5)


def test_ensemble_report_lists_members_and_scores(ensemble_dir: Path) -> None:
    info = json.loads((ensemble_dir / "ensemble.json").read_text())
    for member in info["members"]:
        assert {"fusion", "seed", "valid_score", "test_score", "seconds", "stop_reason"} <= set(member)
        assert (ensemble_dir / member["path"] / "model.safetensors").is_file()
        assert not (ensemble_dir / member["path"] / "checkpoints").exists()
    assert info["split"] == "test" and 0.0 <= info["valid_score"] <= 1.0 and 0.0 <= info["test_score"] <= 1.0
    report = (ensemble_dir / "report.md").read_text(encoding="utf-8")
    assert "| `members/0` | late | 0 |" in report and "| `members/1` | concat | 0 |" in report
    assert f"Validation accuracy: ensemble **{info['valid_score']:.4f}**" in report
    metrics = json.loads((ensemble_dir / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["accuracy"] == info["test_score"]
    assert "members/<i>/" in (ensemble_dir / "README.md").read_text(encoding="utf-8")


def test_cli_predict_and_evaluate_on_the_ensemble_folder(ensemble_dir: Path, table_dir: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", "--model", str(ensemble_dir), "--data",
                                 str(table_dir / "test.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    labels = pd.read_csv(table_dir / "test.csv")["animal"]
    assert list(frame.columns) == ["prediction", "proba_cat", "proba_dog", "proba_owl"]
    result = runner.invoke(app, ["evaluate", "--model", str(ensemble_dir), "--data",
                                 str(table_dir / "test.csv"), "--out", str(tmp_path / "eval"), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(float((frame["prediction"] == labels).mean()))
    assert (tmp_path / "eval" / "report.md").is_file()


def test_single_model_commands_refuse_naming_a_member(ensemble_dir: Path, table_dir: Path) -> None:
    predictor = omnifuse.load(ensemble_dir)
    with pytest.raises(ModelDirError, match=r"explain, embed, export and serve work on one model.*members/0"):
        predictor.explain(table_dir / "test.csv")
    with pytest.raises(ModelDirError, match="pass one of its members"):
        predictor.embed(table_dir / "test.csv")
    with pytest.raises(ModelDirError, match="is an ensemble model folder"):
        load_model(ensemble_dir)  # what export, serve and explain load
    with pytest.raises(ModelDirError, match="backend 'onnx'"):
        omnifuse.load(ensemble_dir, backend="onnx")
    table = str(table_dir / "test.csv")
    result = runner.invoke(app, ["explain", "--model", str(ensemble_dir), "--data", table])
    assert result.exit_code != 0 and isinstance(result.exception, ModelDirError)


def test_a_tampered_ensemble_is_refused(ensemble_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ensemble_dir, copy)
    info = json.loads((copy / "ensemble.json").read_text())
    info["members"][0]["weight"] += 3
    (copy / "ensemble.json").write_text(json.dumps(info))
    with pytest.raises(ModelDirError, match="tampered or damaged: ensemble.json"):
        omnifuse.load(copy)
    for index in range(len(info["members"])):  # selected or not, a changed member file is refused
        member = tmp_path / f"member{index}"
        shutil.copytree(ensemble_dir, member)
        config = member / "members" / str(index) / "config.yaml"
        config.write_text(config.read_text() + "\n")
        with pytest.raises(ModelDirError, match=f"members/{index}: tampered or damaged: config.yaml"):
            omnifuse.load(member)


def test_training_into_an_ensemble_folder_needs_overwrite(ensemble_dir: Path, table_dir: Path) -> None:
    with pytest.raises(DataError, match="already holds a trained ensemble"):
        omnifuse.train(Config.from_dict(CONFIG), table_dir / "train.csv", out=ensemble_dir, progress=False)
    with pytest.raises(DataError, match="re-run it without --resume"):
        omnifuse.train(Config.from_dict(CONFIG), table_dir / "train.csv", out=ensemble_dir, preset="best",
                       resume=True, progress=False)


def test_cli_best_splits_the_time_limit_over_its_members(table_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, epochs=1000, patience=1000)  # every member can only stop by the clock
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--config", str(config), "--train", str(table_dir / "train.csv"),
                                 "--out", str(out), "--quiet", "--preset", "best", "--time-limit", "3"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "ensemble.json").read_text())
    budget = info["budget"]
    assert budget["time_limit"] == 3.0 and budget["planned"] == 6
    assert 1 <= budget["trained"] == len(info["members"]) <= 6
    assert (budget["trained"] < 6) == budget["note"].startswith("The time limit was spent after")
    assert 0.4 < info["members"][0]["time_limit"] <= 0.5  # an equal share of 3 s over 6 members
    for member in info["members"]:
        assert 0 < member["time_limit"] <= 3.0
        # the clock stops the first; later ones train the epochs that fit their share, or the clock stops them
        assert member["stop_reason"].startswith(("reached training.time_limit", "reached the configured"))
    assert info["members"][0]["stop_reason"].startswith("reached training.time_limit")
    text = " ".join(result.output.split())
    assert "preset best: members: 6 (late, concat, attention x seeds 0, 1)" in text
    assert "Ensemble of" in text
    assert isinstance(omnifuse.load(out), EnsemblePredictor)
