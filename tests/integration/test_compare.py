"""`run_compare` end to end on a small real table (PNG images, text, numbers, categories)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image
from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.workflows.compare import run_compare

CONFIG = {
    "label": {"column": "animal", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16, "channels": 1}},
        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 16}},
        "weight": {"type": "numeric"},
        "colour": {"type": "categorical"},
        "sound": {"type": "ignore"},
    },
    "fusion": "attention",
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.003, "patience": 2},
}


def test_compare_writes_results_summary_plot_and_report(table_dir: Path, tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    results = run_compare(
        Config.from_dict(CONFIG), table_dir / "train.csv", None, table_dir / "test.csv", tmp_path,
        fusions="concat,attention", seeds=2, progress=False, console=console,
    )
    methods = ["note-only", "photo-only", "tabular-only", "concat", "attention"]
    everything = pd.read_csv(tmp_path / "results.csv")
    baselines = everything[everything["kind"] == "baseline"]  # fitted once, before the trained methods
    assert list(everything["kind"][: len(baselines)]) == ["baseline"] * len(baselines)
    assert "baseline: fused (linear)" in set(baselines["method"]) and baselines["seed"].isna().all()
    assert baselines["accuracy"].between(0, 1).all() and (baselines["status"] == "ok").all()
    saved = everything[everything["kind"] != "baseline"].reset_index(drop=True)
    assert list(saved["method"]) == [m for m in methods for _ in range(2)]
    assert list(saved["seed"]) == [0, 1] * 5 and (saved["status"] == "ok").all()
    for column in ("accuracy", "macro_f1", "params", "train_s", "ms_per_row",
                   "missing_photo", "corrupted_photo", "missing_note", "corrupted_tabular"):
        assert saved[column].notna().all() and (saved[column] >= 0).all(), column
    assert len(results) == 10 + len(baselines)
    photo_only = saved[saved["method"] == "photo-only"]
    assert (photo_only["missing_note"] == photo_only["accuracy"]).all()  # it never reads the note
    summary = pd.read_csv(tmp_path / "summary.csv")
    fused_floor = summary[summary["method"] == "baseline: fused (linear)"].iloc[0]
    assert fused_floor["seeds"] == 1 and fused_floor["accuracy_std"] == 0.0
    summary = summary[summary["kind"] != "baseline"]
    assert list(summary["method"]) == methods and (summary["seeds"] == 2).all()
    assert {"accuracy_mean", "accuracy_std", "missing_photo_mean"} <= set(summary.columns)
    with Image.open(tmp_path / "comparison.png") as image:
        assert image.format == "PNG" and image.width > 500
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Verdict" in report and "The best fusion is **" in report
    assert "The best classical baseline is **baseline: " in report
    assert "| baseline: fused (linear) |" in report
    assert all(f"| {m} |" in report for m in methods)
    assert (tmp_path / "runs" / "attention" / "seed1" / "checkpoints").is_dir()
    shown = console.export_text()
    assert "tabular-only" in shown and "noisy photo" in shown and "best unimodal baseline" in shown



def test_compare_through_the_cli(table_dir: Path, tmp_path: Path) -> None:
    """`omnifuse compare` is a thin shell over run_compare: same outputs; an unknown fusion exits cleanly."""
    import yaml
    from typer.testing import CliRunner

    from omnifuse.cli import app

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    runner = CliRunner()
    base = ["compare", "--config", str(config), "--train", str(table_dir / "train.csv"),
            "--test", str(table_dir / "test.csv"), "--seeds", "1", "-q"]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "cmp"), "--fusions", "concat"])
    assert result.exit_code == 0, result.output
    for name in ("results.csv", "summary.csv", "comparison.png", "report.md"):
        assert (tmp_path / "cmp" / name).exists(), name
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "cmp2"), "--fusions", "concatt"])
    assert bad.exit_code != 0
    assert "unknown fusion(s) 'concatt' in --fusions" in str(bad.exception)
