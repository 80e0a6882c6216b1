"""The classical floor of the AV-Digits question-answering table (``datasets.build_av_digits_qa``).

Logistic regression on the classical features (pixels + HOG, MFCC statistics; standardised, C chosen on
the validation rows) predicts the written digit from the picture and the spoken digit from the voice,
trained on the answers alone (the "What digit is written?" rows for one, the "What number does the voice
say?" rows for the other; with ``all_labels``, on every row's digit columns); the two predicted digits go
into the table's answer templates for every question type. A generation model on the same rows should
beat its exact match (README, "Generation").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from omnifuse.baselines.features.audio import AudioFeatures
from omnifuse.baselines.features.image import image_features
from omnifuse.datasets.av_digits_qa import answer_for
from omnifuse.generation.evaluate import normalize

SPLITS = ("train", "valid", "test")
GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def qa_baseline(folder: Path, all_labels: bool = False) -> pd.DataFrame:
    """The test rows with the baseline's ``predicted`` answer and ``hit`` (normalised exact match)."""
    tables = {s: pd.read_csv(folder / f"{s}.csv", dtype=str, keep_default_na=False) for s in SPLITS}
    written = _digits(tables, folder, "image", "written", image_features, all_labels)
    spoken = _digits(tables, folder, "audio", "spoken", AudioFeatures(), all_labels)
    test = tables["test"].copy()
    test["predicted"] = [answer_for(t, int(w), int(s))
                         for t, w, s in zip(test["question_type"], written, spoken, strict=True)]
    pairs = zip(test["predicted"], test["answer"], strict=True)
    test["hit"] = [normalize(p) == normalize(a) for p, a in pairs]
    return test


def _digits(tables: dict[str, pd.DataFrame], folder: Path, column: str, kind: str,
            featurize: Callable[[Path], np.ndarray], all_labels: bool) -> np.ndarray:
    """The test rows' predicted digits for one medium (``kind``: "written" or "spoken")."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = {s: np.stack([featurize(folder / v) for v in t[column]]) for s, t in tables.items()}
    rows = {s: np.ones(len(t), bool) if all_labels else (t["question_type"] == kind).to_numpy()
            for s, t in tables.items()}
    labels = {s: t[f"{kind}_digit"] if all_labels else t["answer"] for s, t in tables.items()}
    scaler = StandardScaler().fit(features["train"][rows["train"]])
    best: tuple[float, LogisticRegression] | None = None
    for strength in GRID:
        model = LogisticRegression(C=strength, max_iter=3000)
        model.fit(scaler.transform(features["train"][rows["train"]]), labels["train"][rows["train"]])
        valid = rows["valid"]
        accuracy = float((model.predict(scaler.transform(features["valid"][valid])) ==
                          labels["valid"][valid]).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, model)
    assert best is not None, "the grid is not empty"
    return np.asarray(best[1].predict(scaler.transform(features["test"])))
