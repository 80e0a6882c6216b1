"""Metrics of a whole evaluation set, from numpy arrays; every value is JSON-able and NaN-free."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

from omnifuse.evaluation.calibration import expected_calibration_error


def clean(value: Any) -> Any:
    """Plain Python copy of ``value``: numpy scalars/arrays unwrapped, NaN and inf replaced by None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def per_class_scores(targets: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """{class: {precision, recall, f1, support}}; ``targets``/``predicted`` are (N,) indices or (N, C) 0/1."""
    labels = list(range(len(classes))) if targets.ndim == 1 else None
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        targets, predicted, labels=labels, average=None, zero_division=0
    )
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }


def _binary_auc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC of one 0/1 column, or None when the targets hold a single value."""
    if targets.size == 0 or np.unique(targets).size < 2:
        return None
    return float(skm.roc_auc_score(targets, scores))


def classification_roc_auc(targets: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Binary: AUC of the positive class (index 1); multiclass: macro one-vs-rest AUC.

    Returns None when a class is missing from ``targets`` (the AUC is then undefined).
    """
    num_classes = probabilities.shape[1]
    if num_classes == 2:
        return _binary_auc(targets == 1, probabilities[:, 1])
    if np.unique(targets).size < num_classes:
        return None
    aucs = [_binary_auc(targets == c, probabilities[:, c]) for c in range(num_classes)]
    return float(np.mean([a for a in aucs if a is not None]))


def classification_metrics(
    targets: np.ndarray, probabilities: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, log loss, ECE, per-class scores, ROC AUC and the confusion matrix.

    Args:
        targets: (N,) true class indices.
        probabilities: (N, C) predicted class probabilities (rows sum to 1).
        classes: the C class names, in index order.

    Returns:
        A JSON-able dict; ``roc_auc`` and ``log_loss`` are None where undefined (e.g. an empty set).
    """
    labels = list(range(len(classes)))
    probabilities = probabilities.astype(np.float64)
    predicted = probabilities.argmax(axis=1) if len(targets) else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {"n": int(len(targets)), "classes": list(classes)}
    if len(targets) == 0:
        empty = dict.fromkeys(("accuracy", "macro_f1", "weighted_f1", "log_loss", "ece", "roc_auc"))
        return out | empty | {"per_class": {}, "confusion_matrix": [[0] * len(classes) for _ in classes]}
    out["accuracy"] = float(skm.accuracy_score(targets, predicted))
    for average in ("macro", "weighted"):
        out[f"{average}_f1"] = float(
            skm.f1_score(targets, predicted, labels=labels, average=average, zero_division=0)
        )
    clipped = np.clip(probabilities, 1e-15, 1.0)
    out["log_loss"] = float(skm.log_loss(targets, clipped / clipped.sum(1, keepdims=True), labels=labels))
    out["ece"] = expected_calibration_error(targets, probabilities)  # see evaluation/calibration.py
    out["roc_auc"] = classification_roc_auc(targets, probabilities)
    out["per_class"] = per_class_scores(targets, predicted, classes)
    out["confusion_matrix"] = skm.confusion_matrix(targets, predicted, labels=labels).tolist()
    return clean(out)


def multilabel_metrics(
    targets: np.ndarray, probabilities: np.ndarray, classes: list[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Micro/macro F1, subset accuracy, Hamming loss, per-class scores and macro ROC AUC.

    Args:
        targets: (N, C) 0/1 true label sets.
        probabilities: (N, C) per-class probabilities.
        classes: the C class names.
        threshold: a class is predicted when its probability is at least this.

    Returns:
        A JSON-able dict; ``roc_auc`` is the mean over classes whose targets hold both 0 and 1, or None.
    """
    targets = targets.astype(np.int64)
    predicted = (probabilities >= threshold).astype(np.int64)
    out: dict[str, Any] = {"n": int(len(targets)), "classes": list(classes)}
    if len(targets) == 0:
        empty = dict.fromkeys(("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc"))
        return out | empty | {"per_class": {}}
    for average in ("micro", "macro"):
        out[f"{average}_f1"] = float(skm.f1_score(targets, predicted, average=average, zero_division=0))
    out["subset_accuracy"] = float(skm.accuracy_score(targets, predicted))
    out["hamming_loss"] = float(skm.hamming_loss(targets, predicted))
    out["per_class"] = per_class_scores(targets, predicted, classes)
    aucs = [_binary_auc(targets[:, c], probabilities[:, c]) for c in range(len(classes))]
    defined = [a for a in aucs if a is not None]
    out["roc_auc"] = float(np.mean(defined)) if defined else None
    return clean(out)


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE and R² of ``predictions`` against ``targets`` (both (N,), on the label's own scale).

    R² is None when it is undefined (fewer than two rows or constant targets).
    """
    targets = targets.astype(np.float64).reshape(-1)
    predictions = predictions.astype(np.float64).reshape(-1)
    if len(targets) == 0:
        return {"n": 0, "rmse": None, "mae": None, "r2": None}
    out: dict[str, Any] = {
        "n": int(len(targets)),
        "rmse": float(np.sqrt(skm.mean_squared_error(targets, predictions))),
        "mae": float(skm.mean_absolute_error(targets, predictions)),
        "r2": None,
    }
    if len(targets) >= 2 and np.ptp(targets) > 0:
        out["r2"] = float(skm.r2_score(targets, predictions))
    return clean(out)
