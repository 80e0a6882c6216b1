"""A simple baseline for the AV-Digits question-answering table, on the rows a generation model uses.

    python examples/av_digits_qa_baseline.py DIR [--all-labels]

DIR holds ``omnifuse.datasets.build_av_digits_qa(DIR)`` (built when missing). Logistic regression on the
classical features (pixels + HOG, MFCC statistics; standardised, C chosen on the validation rows) predicts
the written digit from the picture and the spoken digit from the voice, trained on the answers alone (the
"What digit is written?" rows for one, the "What number does the voice say?" rows for the other; with
``--all-labels``, on every row's digit columns); the two predicted digits go into the table's answer
templates for every question type. Prints the test exact match per question type, as the generation
report counts it, to set beside ``omnifuse train`` on the same table (README, "Generation").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from omnifuse.baselines.features.audio import AudioFeatures
from omnifuse.baselines.features.image import image_features
from omnifuse.datasets import build_av_digits_qa
from omnifuse.datasets.av_digits_qa import answer_for
from omnifuse.generation.evaluate import normalize

SPLITS = ("train", "valid", "test")
GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def digit_model(tables: dict[str, pd.DataFrame], folder: Path, column: str, kind: str,
                featurize: Callable[[Path], np.ndarray], all_labels: bool) -> np.ndarray:
    """The test rows' predicted digits for one medium (``kind``: "written" or "spoken")."""
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
    assert best is not None
    return np.asarray(best[1].predict(scaler.transform(features["test"])))


def main(folder: Path, all_labels: bool) -> None:
    if not (folder / "test.csv").is_file():
        build_av_digits_qa(folder)
    tables = {s: pd.read_csv(folder / f"{s}.csv", dtype=str, keep_default_na=False) for s in SPLITS}
    written = digit_model(tables, folder, "image", "written", image_features, all_labels)
    spoken = digit_model(tables, folder, "audio", "spoken", AudioFeatures(), all_labels)
    test = tables["test"]
    answers = [answer_for(t, int(w), int(s)) for t, w, s in zip(test["question_type"], written, spoken,
                                                                   strict=True)]
    hits = pd.Series([normalize(a) == normalize(b) for a, b in zip(answers, test["answer"], strict=True)])
    print(f"test exact match {hits.mean():.3f}")
    for kind, share in hits.groupby(test["question_type"]).mean().items():
        print(f"  {kind}: {share:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--all-labels" in sys.argv[2:])
