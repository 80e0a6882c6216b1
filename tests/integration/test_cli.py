"""The CLI end to end: init-config -> train -> evaluate -> predict, via the Typer app and the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from omnifuse.cli import app

runner = CliRunner()


def test_init_config_infers_types_and_writes_commented_yaml(table_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    result = runner.invoke(
        app, ["init-config", "--train", str(table_dir / "train.csv"), "--label", "animal", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "#" in text
    raw = yaml.safe_load(text)
    types = {name: col["type"] for name, col in raw["columns"].items()}
    assert types == {
        "photo": "image",
        "sound": "audio",
        "note": "text",
        "note_words": "text",  # the same column read a second time by tfidf
        "weight": "numeric",
        "colour": "categorical",
    }
    assert raw["columns"]["note_words"]["source"] == "note"
    assert raw["label"]["task"] == "multiclass"


def test_train_evaluate_predict(table_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(table_dir / "config.yaml"),
            "--train",
            str(table_dir / "train.csv"),
            "--out",
            str(model),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in (
        "config.yaml",
        "preprocessors.json",
        "model.safetensors",
        "metrics.json",
        "report.md",
        "README.md",
        "train_log.csv",
        "split.json",
    ):
        assert (model / name).is_file(), name
    assert (model / "plots" / "confusion_matrix.png").is_file()
    assert not list(model.rglob("*.pkl")) and not list(model.glob("*.pt"))

    result = runner.invoke(
        app, ["evaluate", "--model", str(model), "--data", str(table_dir / "test.csv"), "-q"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((model / "evaluation" / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "weighted_f1", "per_class"} <= set(metrics)

    preds = tmp_path / "preds.csv"
    result = runner.invoke(
        app, ["predict", "--model", str(model), "--data", str(table_dir / "test.csv"), "--out", str(preds)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(preds)
    assert len(frame) == 24
    assert list(frame.columns) == ["prediction", "proba_cat", "proba_dog", "proba_owl"]
    assert frame[["proba_cat", "proba_dog", "proba_owl"]].sum(axis=1).round(4).eq(1.0).all()


def test_train_refuses_existing_model_folder(trained_dir: Path, table_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(table_dir / "config.yaml"),
            "--train",
            str(table_dir / "train.csv"),
            "--out",
            str(trained_dir),
        ],
    )
    assert result.exit_code != 0
    assert "already holds a trained model" in str(result.exception)


def test_entry_point_reports_bad_input_cleanly(table_dir: Path, tmp_path: Path) -> None:
    """The installed `omnifuse` script: a user error prints one line with the fix and exits with 2."""
    frame = pd.read_csv(table_dir / "train.csv")
    frame.loc[3, "photo"] = "img/nope.png"
    frame.to_csv(table_dir / "broken.csv", index=False)
    script = Path(sys.executable).parent / "omnifuse"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            str(script),
            "train",
            "--config",
            str(table_dir / "config.yaml"),
            "--train",
            str(table_dir / "broken.csv"),
            "--out",
            str(tmp_path / "m"),
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "column 'photo' row 3" in proc.stderr
    assert "does not exist" in proc.stderr and "on_bad_row: skip" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_names_every_registered_part_with_its_modality() -> None:
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:3] == ["encoder", "mfcc_stats", "audio"] for line in lines)
    assert any(line.split()[:2] == ["fusion", "late"] for line in lines)
    assert any(line.split()[:3] == ["augment", "affine", "image"] for line in lines)
    assert any(line.split()[:3] == ["augment", "spec_augment", "audio"] for line in lines)
