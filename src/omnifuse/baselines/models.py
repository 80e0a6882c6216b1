"""Baseline models, scikit-learn: a linear model with its regularisation chosen on the validation rows, and
gradient boosting with its number of iterations chosen by early stopping on the validation rows.

Classification: logistic regression (one-vs-rest per class for multilabel); regression: ridge on the task's
standardised targets. Each model returns logits in the task's own space (log-probabilities, per-class
log-odds, standardised predictions), so ``task.metrics`` scores a baseline exactly as it scores the model.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from omnifuse.baselines.blocks import TRAIN, Matrix
from omnifuse.tasks.base import Task

C_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)  # logistic regression on unit-energy blocks, strongest first
ALPHA_GRID = (10.0, 1.0, 0.1, 0.01, 0.001)  # ridge, strongest first
MAX_ITER = 1000  # lbfgs iterations
BOOSTING_ITER = 500  # at most; early stopping on the validation rows picks fewer
PROBABILITY_FLOOR = 1e-7  # probabilities are clipped to [floor, 1 - floor] before the log


@dataclass
class Fitted:
    """A fitted baseline's outputs on the splits it did not train on."""

    logits: dict[str, np.ndarray]  # split -> (N, C) logits in the task's space; regression (N, 1)
    choice: str  # the chosen setting, e.g. "C=10" or "87 iterations"
    seconds: float  # fitting (every grid value) and predicting


def selection_key(task: Task, logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """How good validation ``logits`` are, higher is better: the task's default monitor, then a tie-break.

    Classification: (accuracy, minus the log loss); regression: (minus the RMSE, 0), the RMSE of the
    standardised values ranks like the task's RMSE on the label's scale; multilabel: (the task's macro F1, 0).
    Computed directly, not through ``task.metrics``: that builds every report metric (confusion matrix, ROC
    AUC) and costs ~0.1 s a call, which every grid value would pay.
    """
    if task.name == "regression":
        return -float(np.sqrt(np.mean((logits.reshape(-1) - targets.reshape(-1)) ** 2))), 0.0
    if task.name == "multilabel":
        value = task.metrics(torch.from_numpy(logits), torch.from_numpy(targets))[task.default_monitor()[0]]
        return (float("-inf") if value is None else float(value)), 0.0
    return classification_key(logits, targets.astype(np.int64))


def classification_key(logits: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(accuracy, minus the log loss) of (N, C) logits against (N,) class indices: higher is better."""
    log_probabilities = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)  # (N, C)
    accuracy = float(np.mean(logits.argmax(axis=1) == classes))
    return accuracy, float(np.mean(log_probabilities[np.arange(len(classes)), classes]))


def labels(task: Task, targets: np.ndarray) -> np.ndarray:
    """What scikit-learn fits on: class indices, a 0/1 matrix (multilabel) or standardised values."""
    if task.name == "regression":
        return targets.reshape(-1)
    return targets.astype(np.int64)


def task_logits(task: Task, model: Any, features: Matrix) -> np.ndarray:
    """The fitted model's outputs on ``features`` as logits in the task's space."""
    if task.name == "regression":
        return np.asarray(model.predict(features), dtype=np.float64).reshape(-1, 1)  # (N, 1)
    probabilities = np.clip(model.predict_proba(features), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    if task.name == "multilabel":
        return np.log(probabilities) - np.log1p(-probabilities)  # (N, C) log-odds
    full = np.full((probabilities.shape[0], task.output_dim), PROBABILITY_FLOOR)  # classes the sample lacks
    full[:, np.asarray(model.classes_, dtype=np.int64)] = probabilities
    return np.log(full)  # (N, C)


def linear_model(task: Task, strength: float) -> Any:
    """An unfitted ridge (``strength`` = alpha) or logistic regression (``strength`` = C)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    if task.name == "regression":
        return Ridge(alpha=strength)
    logistic = LogisticRegression(C=strength, max_iter=MAX_ITER)
    return OneVsRestClassifier(logistic) if task.name == "multilabel" else logistic


def fit_linear(task: Task, features: dict[str, Matrix], targets: dict[str, np.ndarray]) -> Fitted:
    """Fits one linear model per grid value on the training rows; keeps the best on the validation rows.

    Args:
        features: split -> (N, D); "train" and "valid" are required.
        targets: split -> encoded targets, as ``task.metrics`` takes them.
    Returns:
        The chosen model's logits on every split but "train" (ties go to the stronger regularisation).
    Raises:
        ValueError: scikit-learn cannot fit the rows (e.g. one class in the training sample).
    """
    regression = task.name == "regression"
    started = time.perf_counter()
    best: tuple[tuple[float, float], str, Any] | None = None
    for strength in ALPHA_GRID if regression else C_GRID:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # one-vs-rest: "label not present in all examples"
            model = linear_model(task, strength).fit(features[TRAIN], labels(task, targets[TRAIN]))
        key = selection_key(task, task_logits(task, model, features["valid"]), targets["valid"])
        if best is None or key > best[0]:
            best = (key, f"{'alpha' if regression else 'C'}={strength:g}", model)
    assert best is not None, "the grid is not empty"
    logits = {s: task_logits(task, best[2], m) for s, m in features.items() if s != TRAIN}
    return Fitted(logits, best[1], time.perf_counter() - started)


def fit_boosting(task: Task, features: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                 categorical: np.ndarray, seed: int) -> Fitted:
    """HistGradientBoosting with early stopping on the validation rows (classification or regression).

    Validation rows whose class the training sample lacks are left out of the early stopping.

    Raises:
        ValueError: multilabel (not supported here), or scikit-learn cannot fit the rows.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if task.name == "multilabel":
        raise ValueError("gradient boosting is not fitted for multilabel tasks")
    y_train, y_valid = labels(task, targets[TRAIN]), labels(task, targets["valid"])
    keep = np.ones(len(y_valid), dtype=bool) if task.name == "regression" else np.isin(y_valid, y_train)
    kind = HistGradientBoostingRegressor if task.name == "regression" else HistGradientBoostingClassifier
    # scikit-learn's 20 rows per leaf suits large tables; small ones get leaves of a twentieth of the rows
    leaf = max(1, min(20, len(y_train) // 20))
    options = {"max_iter": BOOSTING_ITER, "early_stopping": bool(keep.any()), "n_iter_no_change": 10,
               "min_samples_leaf": leaf, "categorical_features": categorical if categorical.any() else None,
               "random_state": seed}
    started = time.perf_counter()
    model = kind(**options)
    if keep.any():
        model.fit(features[TRAIN], y_train, X_val=features["valid"][keep], y_val=y_valid[keep])
    else:
        model.fit(features[TRAIN], y_train)
    logits = {s: task_logits(task, model, m) for s, m in features.items() if s != TRAIN}
    return Fitted(logits, f"{model.n_iter_} iterations", time.perf_counter() - started)
