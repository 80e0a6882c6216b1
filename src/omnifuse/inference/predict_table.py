"""Batch prediction of a whole table into a DataFrame (used by `omnifuse predict`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from omnifuse.inference.loading import load
from omnifuse.inference.predictor import Predictor


def predict_table(
    model: str | Path | Predictor, data: str | Path | pd.DataFrame, num_workers: int = 0
) -> pd.DataFrame:
    """One row per input row, in order: ``prediction`` and, for classification, ``proba_<class>``.

    ``num_workers`` > 0: rows are decoded and preprocessed in that many DataLoader worker processes.
    """
    predictor = model if isinstance(model, Predictor) else load(model)
    if predictor.task.name == "generation":  # it writes text: one generated text per row
        return pd.DataFrame({"prediction": predictor.generate(data)})
    logits = predictor.logits(data, num_workers=num_workers)
    frame = pd.DataFrame({"prediction": predictor.task.decode(logits)})
    if predictor.task.classes:
        probs = predictor.task.probabilities(logits).numpy()
        for i, cls in enumerate(predictor.task.classes):
            frame[f"proba_{cls}"] = probs[:, i]
    return frame
