"""The evaluation report: report.md content, PNG plots that are real images, the CLI table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from omnifuse.evaluation.report import format_metrics_table, plot_roc, write_report
from omnifuse.tasks import Task, make_task

HISTORY: list[dict[str, Any]] = [
    {"epoch": 1, "train_loss": 1.0, "valid_loss": 1.1, "accuracy": 0.5, "rmse": 2.0},
    {"epoch": 2, "train_loss": 0.7, "valid_loss": 0.9, "accuracy": 0.7, "rmse": 1.5},
    {"epoch": 3, "train_loss": 0.5, "valid_loss": None, "accuracy": None, "rmse": 1.2},
]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def assert_image(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 200
        assert len(set(image.convert("L").getdata())) > 10  # something was drawn


def evaluate(task: Task, labels: list, rows: int) -> tuple[dict, np.ndarray, np.ndarray]:
    task.fit(labels)
    targets = torch.stack([task.encode(labels[i % len(labels)]) for i in range(rows)])
    logits = torch.randn(rows, task.output_dim)
    if targets.dim() == 1:  # classification: make the true class likelier, for a readable plot
        logits += 2 * torch.nn.functional.one_hot(targets, task.output_dim)
    metrics = task.metrics(logits, targets)
    return metrics, task.probabilities(logits).numpy(), targets.numpy()


def test_multiclass_report(tmp_path: Path) -> None:
    task = make_task("multiclass")
    metrics, probs, targets = evaluate(task, ["cat", "dog", "eel|x"], rows=30)
    report = write_report(
        tmp_path / "out", metrics, task, title="Pets", history=HISTORY,
        extra_sections={"Data": "30 rows, 0 skipped."}, probabilities=probs, targets=targets,
    )
    text = report.read_text()
    assert report == tmp_path / "out" / "report.md"
    assert text.startswith("# Pets")
    assert "| accuracy |" in text and "| log_loss |" in text and "| ece |" in text
    assert "| eel\\|x |" in text  # pipes in class names do not break the table
    assert "## Data\n\n30 rows, 0 skipped." in text
    for name in ("confusion_matrix", "per_class_f1", "roc", "reliability", "training_curves"):
        assert f"(plots/{name}.png)" in text
        assert_image(tmp_path / "out" / "plots" / f"{name}.png")


def test_binary_report_without_arrays_skips_roc(tmp_path: Path) -> None:
    task = make_task("binary")
    metrics, _, _ = evaluate(task, [0, 1], rows=10)
    text = write_report(tmp_path, metrics, task, title="B").read_text()
    assert "roc.png" not in text and "training_curves" not in text
    assert_image(tmp_path / "plots" / "confusion_matrix.png")


def test_roc_skipped_when_targets_have_one_class(tmp_path: Path) -> None:
    probs = np.array([[0.3, 0.7], [0.6, 0.4]])
    assert plot_roc(probs, np.array([1, 1]), ["a", "b"], tmp_path / "roc.png") is None
    assert not (tmp_path / "roc.png").exists()


def test_multilabel_report(tmp_path: Path) -> None:
    task = make_task("multilabel")
    metrics, probs, targets = evaluate(task, ["a|b", "b", "c|a", "c"], rows=20)
    report = write_report(tmp_path, metrics, task, title="Tags", probabilities=probs, targets=targets)
    text = report.read_text()
    assert "| micro_f1 |" in text and "| hamming_loss |" in text and "reliability" not in text
    assert_image(tmp_path / "plots" / "roc.png")
    assert_image(tmp_path / "plots" / "per_class_f1.png")


def test_regression_report(tmp_path: Path) -> None:
    task = make_task("regression")
    metrics, preds, targets = evaluate(task, [1.0, 5.0, 2.5, 8.0], rows=40)
    report = write_report(
        tmp_path, metrics, task, title="Prices", history=HISTORY, probabilities=preds, targets=targets
    )
    text = report.read_text()
    assert "| rmse |" in text and "| r2 |" in text and "Per class" not in text
    for name in ("predicted_vs_true", "residuals", "training_curves"):
        assert_image(tmp_path / "plots" / f"{name}.png")
    assert "confusion_matrix" not in text


def test_format_metrics_table() -> None:
    metrics: dict[str, Any] = {"accuracy": 0.5, "roc_auc": None, "per_class": {}, "classes": ["a"]}
    metrics |= {"n": 4, "log_loss": 0.25}
    table = format_metrics_table(metrics, "binary")
    console = Console(width=80, record=True)
    console.print(table)
    out = console.export_text()
    assert [line.split("│")[1].strip() for line in out.splitlines() if "│" in line] == [
        "accuracy", "roc_auc", "log_loss", "n"
    ]
    assert "0.5000" in out and "n/a" in out and "classes" not in out


def test_a_top_line_comes_before_the_heading(tmp_path: Path) -> None:
    task = make_task("multiclass")
    metrics, _, _ = evaluate(task, ["cat", "dog"], rows=10)
    line = "model 0.9 beats the best baseline"
    text = write_report(tmp_path, metrics, task, title="Pets", top_line=line).read_text()
    assert text.startswith("model 0.9 beats the best baseline\n\n# Pets\n")
