"""When training fits a temperature, and the task copy it returns (the shared task is never changed)."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.evaluation.temperature import calibrates, with_temperature
from omnifuse.tasks import ClassificationTask, make_task

CONFIG = {"label": {"column": "y", "task": "multiclass"}, "columns": {"x": {"type": "numeric"}}}


def test_calibrates_only_single_label_classifiers_with_enough_rows() -> None:
    console = Console(record=True, width=200)
    on = Config.from_dict(CONFIG)
    off = Config.from_dict(CONFIG | {"training": {"calibrate": False}})
    task = ClassificationTask("multiclass", classes=["a", "b"])
    assert calibrates(on, task, 20, console)
    assert not calibrates(off, task, 500, console)
    assert not calibrates(on, make_task("regression"), 500, console)
    assert console.export_text() == ""  # nothing to say about those
    assert not calibrates(on, task, 19, console)
    assert "Not calibrated: 19 validation row(s), at least 20" in console.export_text()


def test_with_temperature_returns_a_calibrated_copy() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2))  # (N, C)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    targets = (rng.random(200) < p[:, 1]).astype(np.int64)  # labels drawn from softmax(z)
    logits = 4.0 * z  # four times too sure: softened
    task = ClassificationTask("multiclass", classes=["a", "b"])
    console = Console(record=True, width=200)
    calibrated = with_temperature(task, logits, targets, console)
    assert isinstance(calibrated, ClassificationTask) and calibrated.temperature > 1.0
    assert task.temperature == 1.0 and calibrated.classes == task.classes
    assert "Calibrated: temperature" in console.export_text()
    flat = with_temperature(task, np.zeros((30, 2)), np.arange(30) % 2, console)
    assert flat is task and "Not calibrated: no temperature fits" in console.export_text()
