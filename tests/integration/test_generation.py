"""Generation end to end: train -> report -> save -> load -> generate (Python, predict, CLI), and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.errors import BadRowError, ConfigError, DataError, ExportError

from .conftest import make_captioned_table

CONFIG = """
label: {column: caption, task: generation}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1, widths: [8, 16]}}
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
  animal: {type: ignore}
  sound: {type: ignore}
  weight: {type: ignore}
  colour: {type: ignore}
generation: {hidden_size: 32, layers: 1, heads: 2, prefix_tokens: 2, max_new_tokens: 8}
training: {epochs: 4, batch_size: 16, lr: 0.005}
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def generation_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("captions")
    make_captioned_table(folder, 48, 0).to_csv(folder / "train.csv", index=False)
    make_captioned_table(folder, 12, 1).to_csv(folder / "test.csv", index=False)
    (folder / "config.yaml").write_text(CONFIG)
    omnifuse.train(folder / "config.yaml", folder / "train.csv", test=folder / "test.csv",
                   out=folder / "model", progress=False)
    return folder


def test_training_writes_a_report_with_generated_examples(generation_dir: Path) -> None:
    model = generation_dir / "model"
    report = (model / "report.md").read_text()
    assert "Task: **generation**" in report and "## Examples" in report
    assert "| row | target | generated |" in report
    captions = pd.read_csv(generation_dir / "test.csv")["caption"]
    lines = [line for line in report.splitlines() if line.startswith("| ") and "|---" not in line]
    shown = [line.split(" | ") for line in lines]
    rows = [(int(cells[0].strip("| ")), cells[1]) for cells in shown if cells[0].strip("| ").isdigit()]
    assert rows and all(target == captions[row] for row, target in rows)  # the table's texts, as written
    metrics = json.loads((model / "metrics.json").read_text())
    for key in ("loss", "perplexity", "token_accuracy", "exact_match", "mean_words", "bleu_4", "rouge_l",
                "cider_d", "vqa_accuracy"):
        assert key in metrics, key
    assert 0.0 <= metrics["exact_match"] <= 1.0 and metrics["perplexity"] >= 1.0


def test_a_loaded_model_writes_what_the_trained_one_wrote(generation_dir: Path) -> None:
    predictor = omnifuse.load(generation_dir / "model")
    test = pd.read_csv(generation_dir / "test.csv")
    texts = predictor.generate(test, base_dir=generation_dir)
    assert len(texts) == len(test) and all(isinstance(t, str) for t in texts)
    assert predictor.predict(test, base_dir=generation_dir) == texts  # predict writes too
    assert predictor.generate(test, base_dir=str(generation_dir)) == texts  # a str folder works too
    again = omnifuse.load(generation_dir / "model").generate(test, base_dir=generation_dir)
    assert again == texts
    one = predictor.generate(test.iloc[0].to_dict(), base_dir=generation_dir)
    assert one == texts[0]
    beams = predictor.generate(test, base_dir=generation_dir, num_beams=3, max_new_tokens=4)
    assert all(len(t.split()) <= 4 for t in beams)


def test_cli_generate_writes_one_row_per_input_row(generation_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "generated.csv"
    result = runner.invoke(app, ["generate", "--model", str(generation_dir / "model"),
                                 "--data", str(generation_dir / "test.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["generated"] and len(frame) == 12
    predicted = runner.invoke(app, ["predict", "--model", str(generation_dir / "model"), "--data",
                                    str(generation_dir / "test.csv"), "--out", str(tmp_path / "p.csv")])
    assert predicted.exit_code == 0, predicted.output
    predictions = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)["prediction"]
    assert predictions.tolist() == frame["generated"].tolist()


def test_what_a_generation_model_does_not_do_is_refused_clearly(generation_dir: Path) -> None:
    predictor = omnifuse.load(generation_dir / "model")
    row = pd.read_csv(generation_dir / "test.csv").iloc[:1]
    for call in (predictor.predict_proba, predictor.logits, predictor.explain):
        with pytest.raises(DataError, match="generation model: it writes text; use predictor.generate"):
            call(row, base_dir=generation_dir)
    result = runner.invoke(app, ["export", "--model", str(generation_dir / "model"), "--format", "onnx",
                                 "--out", str(generation_dir / "m.onnx")])
    assert isinstance(result.exception, ExportError)  # main() prints it in one line, status 2
    assert "generation model, which ONNX export does not cover" in str(result.exception)


def test_generate_on_a_classifier_is_refused(trained_dir: Path, table_dir: Path) -> None:
    with pytest.raises(DataError, match="generate is for generation models; this one is a multiclass"):
        omnifuse.load(trained_dir).generate(table_dir / "test.csv")


def test_bad_targets_and_configs_are_reported(tmp_path: Path) -> None:
    frame = make_captioned_table(tmp_path, 12, 0)
    frame.loc[3, "caption"] = ""
    raw = yaml.safe_load(CONFIG)
    with pytest.raises(BadRowError, match=r"column 'caption' row 3: the label is missing"):
        omnifuse.train(Config.from_dict(raw), frame, out=tmp_path / "m", base_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"generation.hidden_size: 30 is not a multiple of generation.hea"):
        Config.from_dict({**raw, "generation": {"hidden_size": 30, "heads": 4}})
    with pytest.raises(ConfigError, match=r"generation: only used with label.task: generation"):
        Config.from_dict({**raw, "label": {"column": "animal", "task": "multiclass"}, "columns": {
            "photo": raw["columns"]["photo"], "caption": {"type": "ignore"}}})


def test_init_config_writes_a_generation_config_that_trains(tmp_path: Path) -> None:
    make_captioned_table(tmp_path, 24, 0).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "gen.yaml"
    args = ["--task", "generation", "--label", "caption", "--columns", "photo,note", "--out", str(out)]
    result = runner.invoke(app, ["init-config", "--train", str(tmp_path / "train.csv"), *args])
    assert result.exit_code == 0, result.output
    cfg = Config.from_yaml(out)
    assert cfg.label.task == "generation" and cfg.generation is not None
    assert cfg.input_names() == ["note", "photo"] and cfg.columns["animal"].type == "ignore"
    missing = runner.invoke(app, ["init-config", "--train", str(tmp_path / "train.csv"), "--task",
                                  "generation", "--out", str(tmp_path / "x.yaml")])
    assert missing.exit_code != 0 and "--task generation needs --label" in missing.output
