"""Test-split ECE of trained model folders: the plain softmax, and a temperature fitted on validation.

Usage: python scripts/calibration_check.py TABLE_FOLDER MODEL_FOLDER [MODEL_FOLDER ...]

TABLE_FOLDER holds ``valid.csv`` and ``test.csv`` (e.g. ``runs/demo/data/av_digits``); each model folder is
a single-label classifier trained on that table (e.g. ``runs/demo/models/av_digits/fused``). The temperature
is fitted as ``omnifuse train`` fits it (``fit_temperature``), so a folder trained before calibration
existed shows what calibration would give it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import omnifuse
from omnifuse.evaluation.calibration import calibration_summary, fit_temperature
from omnifuse.inference.predictor import Predictor


def logits_and_targets(predictor: Predictor, table: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) logits and (N,) class indices of a labelled table."""
    frame = pd.read_csv(table)
    label = predictor.config.label.column
    logits = predictor.logits(frame.drop(columns=[label]), base_dir=table.parent).numpy()
    targets = np.array([int(predictor.task.encode(v)) for v in frame[label]])
    return logits, targets


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    data = Path(argv[0])
    for folder in argv[1:]:
        predictor = omnifuse.load(folder)
        valid = logits_and_targets(predictor, data / "valid.csv")
        test = logits_and_targets(predictor, data / "test.csv")
        temperature = fit_temperature(*valid)
        summary = calibration_summary(*test, temperature or 1.0)
        shown = "none fitted" if temperature is None else f"{temperature:.3f}"
        print(f"{folder}: temperature {shown}, test ECE {summary['ece_uncalibrated']:.4f} -> "
              f"{summary['ece']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
