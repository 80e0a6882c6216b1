"""Batch prediction of a whole table into a DataFrame (used by `omnifuse predict`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from omnifuse.predictor import Predictor, load


def predict_table(model: str | Path | Predictor, data: str | Path | pd.DataFrame) -> pd.DataFrame:
    """One row per input row, in order: ``prediction`` and, for classification, ``proba_<class>``."""
    predictor = model if isinstance(model, Predictor) else load(model)
    logits = predictor.logits(data)
    frame = pd.DataFrame({"prediction": predictor.task.decode(logits)})
    if predictor.task.classes:
        probs = predictor.task.probabilities(logits).numpy()
        for i, cls in enumerate(predictor.task.classes):
            frame[f"proba_{cls}"] = probs[:, i]
    return frame
