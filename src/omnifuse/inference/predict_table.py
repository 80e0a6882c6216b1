"""Batch prediction of a whole table into a DataFrame (used by `omnifuse predict`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.data.collate import batches
from omnifuse.inference.loading import load
from omnifuse.inference.predictor import Predictor
from omnifuse.ood.rows import flag_columns
from omnifuse.ood.scoring import has_scores, score_table


def predict_table(
    model: str | Path | Predictor, data: str | Path | pd.DataFrame, num_workers: int = 0
) -> pd.DataFrame:
    """One row per input row, in order: ``prediction``, for classification ``proba_<class>``, and for a
    model with fitted OOD scores ``ood_score_<input>``, ``ood_weight_<input>`` and ``ood_note`` (see
    ``Predictor.ood_flags``). With ``ood.drifted_columns: drop`` a column whose flags say the whole table
    drifted (``omnifuse validate --model``) is fused as missing in every row (its weights all 0).

    ``num_workers`` > 0: rows are decoded and preprocessed in that many DataLoader worker processes
    (a model with OOD scores prepares them in this process, for its one scored pass).
    """
    predictor = model if isinstance(model, Predictor) else load(model)
    if predictor.task.name == "generation":  # it writes text: one generated text per row
        return pd.DataFrame({"prediction": predictor.generate(data)})
    flags: dict[str, list[Any]] = {}
    if has_scores(predictor.model) and predictor.onnx_backend is None:
        drop = predictor.config.ood.drifted_columns == "drop"
        collated = list(batches(predictor.prepare(data), predictor.batch_size))
        scored = score_table(predictor.model, collated, predictor.device, drop)  # type: ignore[arg-type]
        logits = scored.logits
        flags = flag_columns(scored.ratios, scored.present, predictor.model.gate.drop)  # type: ignore[union-attr]
        for name in scored.dropped:  # the whole column drifted: fused as missing in every row
            column = f"ood_weight_{name}"
            flags[column] = [0.0 if w is not None else None for w in flags[column]]
    else:
        logits = predictor.logits(data, num_workers=num_workers)
    frame = pd.DataFrame({"prediction": predictor.task.decode(logits)})
    if predictor.task.classes:
        probs = predictor.task.probabilities(logits).numpy()
        for i, cls in enumerate(predictor.task.classes):
            frame[f"proba_{cls}"] = probs[:, i]
    for name, values in flags.items():
        frame[name] = values
    return frame
