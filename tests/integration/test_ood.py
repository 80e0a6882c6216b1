"""OOD scores end to end: fitted after training, saved, reported per row and per column, and the fallback
(a flagged input fused exactly as a missing one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.data.collate import batches
from omnifuse.errors import ConfigError
from omnifuse.serving.service import explanation_rows, prediction_rows

from .conftest import make_table

CONFIG = """
label: {column: animal, task: multiclass}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  sound: {type: audio, encoder: {name: mfcc_stats, n_mels: 24, max_seconds: 0.5, sample_rate: 8000}}
fusion: {name: late, combine: mean}
training: {epochs: 4, batch_size: 16, lr: 0.003}
ood: {action: drop, quantile: 0.95}
"""


def _shift_sounds(folder: Path, table: pd.DataFrame) -> pd.DataFrame:
    """The same rows with every clip replaced by loud broadband noise: a sound source never trained on."""
    rng = np.random.default_rng(5)
    shifted = table.copy()
    for i in range(len(table)):
        path = f"wav/shift_{i}.wav"
        sf.write(folder / path, (0.8 * rng.uniform(-1, 1, 4000)).astype(np.float32), 8000)
        shifted.loc[i, "sound"] = path
    return shifted


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ood")
    make_table(folder, 60, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, 30, seed=1).to_csv(folder / "valid.csv", index=False)  # >= 20 rows: fitted
    test = make_table(folder, 30, seed=2)
    test.to_csv(folder / "test.csv", index=False)
    _shift_sounds(folder, test).to_csv(folder / "shift.csv", index=False)
    (folder / "config.yaml").write_text(CONFIG)
    out = folder / "model"
    omnifuse.train(folder / "config.yaml", train=folder / "train.csv", valid=folder / "valid.csv",
                   test=folder / "test.csv", out=out, progress=False)
    return folder, out


def test_shifted_sounds_are_flagged_and_in_distribution_ones_rarely(model: tuple[Path, Path]) -> None:
    folder, out = model
    predictor = omnifuse.load(out)
    shifted = predictor.ood_flags(folder / "shift.csv")
    normal = predictor.ood_flags(folder / "test.csv")
    assert (shifted["ood_score_sound"] > 1).mean() > 0.9
    assert (normal["ood_score_sound"] > 1).mean() < 0.3 and (normal["ood_score_photo"] > 1).mean() < 0.3
    assert shifted["ood_note"].str.contains("sound looks unlike the training sound").mean() > 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["ood"]) == {"photo", "sound"}  # the training report's own flag rates


def test_a_flagged_sound_is_fused_exactly_as_a_missing_one(model: tuple[Path, Path]) -> None:
    folder, out = model
    predictor = omnifuse.load(out)
    examples = predictor.prepare(folder / "shift.csv")
    logits, ratios, _ = predictor.run_scored(examples)
    flagged = ratios["sound"] > 1
    assert flagged.any()
    batch = next(iter(batches(examples, len(examples))))
    presence = dict(batch.presence)
    presence["sound"] = torch.zeros_like(presence["sound"])
    with torch.inference_mode():
        missing = predictor.model(batch.inputs, presence)  # (N, C): the sound cell empty
    torch.testing.assert_close(logits[flagged], missing[flagged])
    assert prediction_rows(predictor, examples[:2])[0]["ood"]["sound"]["weight"] == 0.0  # the HTTP answer
    explained = explanation_rows(predictor, examples[:2])[0]  # the HTTP explain answer
    assert explained["ood"]["sound"]["flagged"] and "sound looks unlike" in explained["ood_note"]


def test_save_and_load_keep_the_statistics(model: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = model
    first, second = omnifuse.load(out).model.gate, omnifuse.load(out).model.gate
    assert first is not None and second is not None and first.fitted == ["photo", "sound"]
    for name in first.stats:
        for key, value in first.stats[name].state_dict().items():
            torch.testing.assert_close(value, second.stats[name].state_dict()[key])
        assert float(first.stats[name].threshold) != 1.0  # fitted, not the initial value


def test_validate_model_reports_drift_with_its_exit_code(model: tuple[Path, Path]) -> None:
    folder, out = model
    runner = CliRunner()
    drifted = runner.invoke(app, ["validate", "--model", str(out), "--data", str(folder / "shift.csv")])
    assert drifted.exit_code == 1, drifted.output
    assert "DRIFTED: sound" in drifted.output
    calm = runner.invoke(app, ["validate", "--model", str(out), "--data", str(folder / "test.csv")])
    assert calm.exit_code == 0, calm.output
    both = runner.invoke(app, ["validate", "--model", str(out), "--config", str(folder / "config.yaml"),
                               "--data", str(folder / "test.csv")])
    assert both.exit_code == 2 and "not both" in both.output


def test_evaluate_reports_the_shifted_table_beside_the_test_table(model: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    folder, out = model
    metrics = omnifuse.evaluate(out, folder / "test.csv", tmp_path / "eval", progress=False,
                                shift_test=folder / "shift.csv")
    shift = metrics["shift"]
    assert shift["ood"]["sound"]["drifted"] and not metrics["ood"]["sound"]["drifted"]
    assert set(shift["without"]) == {"photo", "sound"} and 0.0 <= shift["accuracy"] <= 1.0
    assert (tmp_path / "eval" / "shift" / "metrics.json").is_file()
    assert "## Shifted test table" in (tmp_path / "eval" / "report.md").read_text()


def test_predict_writes_the_flag_columns(model: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = model
    target = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", "-m", str(out), "-d", str(folder / "shift.csv"),
                                      "-o", str(target)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(target)
    assert {"ood_score_photo", "ood_score_sound", "ood_weight_sound", "ood_note"} <= set(frame.columns)
    assert set(frame["ood_weight_sound"].unique()) <= {0.0, 1.0}
    explained = omnifuse.load(out).explain(folder / "shift.csv")
    assert explained["ood_note"].str.contains("sound looks unlike").mean() > 0.9
    assert {"delta_sound", "ood_score_sound"} <= set(explained.columns)


def test_a_fitted_dropping_gate_exports_to_onnx_with_parity(model: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = model
    result = CliRunner().invoke(app, ["export", "-m", str(out), "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output  # the export checks onnxruntime against torch row by row
    assert "max |onnxruntime - torch|" in result.output


def test_compare_scores_every_method_and_baseline_on_the_shifted_table(model: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    from omnifuse.workflows.compare import run_compare

    folder, _ = model
    results = run_compare(folder / "config.yaml", folder / "train.csv", folder / "valid.csv",
                          folder / "test.csv", tmp_path / "compare", fusions="late", seeds=1, progress=False,
                          shift_test=folder / "shift.csv")
    ok = results[results["status"] == "ok"].set_index("method")
    assert {"late", "sound-only", "photo-only"} <= set(ok.index)
    assert ok["shift_accuracy"].between(0, 1).all()  # every method and baseline scored on the shifted rows
    assert ok.loc[["late", "sound-only"], "ece"].between(0, 1).all()  # of the calibrated probabilities
    assert ok.loc["sound-only", "shift_flagged_sound"] > 0.9 and ok.loc["late", "shift_flagged_sound"] > 0.9
    assert any(m.startswith("baseline: ") for m in ok.index)
    assert "shift_accuracy" in (tmp_path / "compare" / "report.md").read_text()


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("quantile", 1.5, "ood.quantile"), ("action", "ignore", "ood.action"), ("max_rows", 2, "ood.max_rows"),
])
def test_bad_ood_options_are_named(key: str, value: object, needle: str) -> None:
    raw = yaml.safe_load(CONFIG)
    raw["ood"][key] = value
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        Config.from_dict(raw)
