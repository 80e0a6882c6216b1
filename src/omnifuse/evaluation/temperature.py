"""Calibrating a trained classifier: its task with a temperature fitted on the validation rows.

Shared by ``omnifuse train`` (api) and the members of ``--preset best`` (ensemble/best); the math is in
``calibration.py``.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.evaluation.calibration import MIN_CALIBRATION_ROWS, calibration_summary, fit_temperature
from omnifuse.tasks.base import Task
from omnifuse.tasks.classification import ClassificationTask


def calibrates(cfg: Config, task: Task, rows: int, console: Console) -> bool:
    """Whether a temperature is fitted: ``training.calibrate``, a single-label classifier and at least
    ``MIN_CALIBRATION_ROWS`` validation rows (the last one missing is said)."""
    if not (cfg.training.calibrate and isinstance(task, ClassificationTask)):
        return False
    if rows < MIN_CALIBRATION_ROWS:
        console.print(f"Not calibrated: {rows} validation row(s), at least {MIN_CALIBRATION_ROWS} are needed "
                      "to fit a temperature (the probabilities are the plain softmax)")
        return False
    return True


def with_temperature(task: Task, logits: np.ndarray, targets: np.ndarray, console: Console) -> Task:
    """A copy of the classifier ``task`` with the temperature fitted on (N, C) validation logits and (N,)
    class indices, or ``task`` itself when none fits; says which."""
    temperature = fit_temperature(logits, targets)
    if temperature is None:
        console.print("Not calibrated: no temperature fits the validation rows better than the ends of its "
                      "range (the probabilities are the plain softmax)")
        return task
    summary = calibration_summary(logits, targets, temperature)
    console.print(f"Calibrated: temperature {temperature:.3f} fitted on {len(targets)} validation rows "
                  f"(validation ECE {summary['ece_uncalibrated']:.4f} -> {summary['ece']:.4f})")
    return ClassificationTask.from_state(task.state_dict() | {"temperature": temperature})
