"""Leak, row-id and constant-column checks through the CLI: init-config ignores, validate and train warn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from omnifuse.cli import app

runner = CliRunner()
LEAK = "column 'caption' predicts the label exactly in 100% of training rows: a leak?"
CONFIG = {
    "label": {"column": "label", "task": "multiclass"},
    "columns": {
        "caption": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
        "row": {"type": "numeric"},
        "size": {"type": "numeric"},
    },
    "training": {"epochs": 1, "batch_size": 16},
}


def _table(folder: Path) -> Path:
    labels = [["coat", "shirt", "bag"][i % 3] for i in range(48)]
    pd.DataFrame({
        "caption": [f"a photo of a {y}" for y in labels],
        "row": list(range(100, 148)),  # a row number
        "size": [float(i % 5) for i in range(48)],
        "label": labels,
    }).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the terminal width


def test_init_config_writes_the_leak_as_ignore_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    args = ["init-config", "--train", str(_table(tmp_path)), "--label", "label", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"columns.caption: ignore: {LEAK} set `type: categorical` to use it anyway" in _flat(result.output)
    raw = yaml.safe_load(out.read_text())
    assert {n: c["type"] for n, c in raw["columns"].items()} == {
        "caption": "ignore", "row": "ignore", "size": "numeric",
    }
    assert f"  caption:  # ignore: {LEAK}" in out.read_text()


def test_validate_warns_with_the_fix_and_keeps_its_exit_status(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["validate", "--config", str(tmp_path / "c.yaml"), "--data", str(_table(tmp_path)),
            "--out", str(tmp_path / "v")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert f"warning: {LEAK} set `type: ignore`" in text
    assert "warning: column 'row' has 48 distinct values in 48 non-empty training rows (100%): a row id?" \
        in text
    assert (tmp_path / "v" / "column_warnings.csv").is_file()
    frame = pd.read_csv(tmp_path / "train.csv").astype({"size": object})
    frame.loc[2, "size"] = "big"
    frame.to_csv(tmp_path / "train.csv", index=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # bad rows still decide it
    assert f"warning: {LEAK}" in _flat(result.output)


def test_train_warns_once_and_trains(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["train", "--config", str(tmp_path / "c.yaml"), "--train", str(_table(tmp_path)),
            "--out", str(tmp_path / "model"), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert text.count(f"warning: {LEAK} set `type: ignore`") == 1
    assert text.count("warning: column 'row' has") == 1
    assert (tmp_path / "model" / "model.safetensors").is_file()
