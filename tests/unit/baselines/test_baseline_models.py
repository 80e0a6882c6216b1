"""Baseline models: logistic / ridge with the regularisation chosen on validation, gradient boosting with
early stopping on validation; logits in the task's own space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnifuse.baselines.models import C_GRID, fit_boosting, fit_linear, selection_key, task_logits
from omnifuse.tasks.classification import ClassificationTask
from omnifuse.tasks.multilabel import MultilabelTask
from omnifuse.tasks.regression import RegressionTask


def _accuracy(task: ClassificationTask, logits: np.ndarray, targets: np.ndarray) -> float:
    return float(task.metrics(torch.from_numpy(logits), torch.from_numpy(targets))["accuracy"])


def _classes(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, k, size=n)


def test_separable_rows_choose_the_weakest_regularisation() -> None:
    """Every C separates the rows; the log-loss tie-break prefers the most confident (weakest) one."""
    rng = np.random.default_rng(0)
    task = ClassificationTask("multiclass", classes=["a", "b", "c"])
    y = {s: _classes(60, 3, rng) for s in ("train", "valid", "test")}
    x = {s: np.eye(3)[v] + 0.05 * rng.normal(size=(60, 3)) for s, v in y.items()}
    fitted = fit_linear(task, x, y)
    assert fitted.choice == f"C={C_GRID[-1]:g}" and set(fitted.logits) == {"valid", "test"}
    assert _accuracy(task, fitted.logits["test"], y["test"]) == 1.0


def test_noisy_wide_rows_choose_stronger_regularisation_on_validation() -> None:
    """A weak signal among 300 noise columns, 25% label noise: weak regularisation memorises the noise."""
    rng = np.random.default_rng(1)
    task = ClassificationTask("binary", classes=[0, 1])
    y = {s: _classes(80, 2, rng) for s in ("train", "valid")}
    x = {}
    for split, labels in y.items():
        noisy = np.where(rng.random(80) < 0.25, 1 - labels, labels)
        x[split] = np.hstack([(2.0 * noisy - 1.0)[:, None], rng.normal(size=(80, 300))]) / np.sqrt(301)
    fitted = fit_linear(task, x, y)
    keys = {}
    for c in C_GRID:  # the same fits, scored independently: the choice is the best key on validation
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=1000).fit(x["train"], y["train"])
        keys[f"C={c:g}"] = selection_key(task, task_logits(task, model, x["valid"]), y["valid"])
    assert fitted.choice == max(keys, key=lambda k: keys[k])
    assert fitted.choice != f"C={C_GRID[-1]:g}"


def test_a_class_missing_from_the_training_rows_gets_a_floor_probability() -> None:
    from sklearn.linear_model import LogisticRegression

    task = ClassificationTask("multiclass", classes=["a", "b", "c"])
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [0.1], [0.9]]), np.array([0, 2, 0, 2]))
    logits = task_logits(task, model, np.array([[0.0], [1.0]]))
    assert logits.shape == (2, 3) and (logits[:, 1] < -15).all()
    assert logits.argmax(axis=1).tolist() == [0, 2]


def test_ridge_for_regression_and_one_vs_rest_for_multilabel() -> None:
    rng = np.random.default_rng(2)
    x = {s: rng.normal(size=(50, 4)) for s in ("train", "valid")}
    y = {s: (2.0 * m[:, :1] - m[:, 1:2]) for s, m in x.items()}  # (N, 1) standardised-like targets
    fitted = fit_linear(RegressionTask(), x, y)
    assert fitted.choice.startswith("alpha=") and fitted.logits["valid"].shape == (50, 1)
    assert np.sqrt(np.mean((fitted.logits["valid"] - y["valid"]) ** 2)) < 0.1
    multi = MultilabelTask(classes=["p", "q"])
    labels = {s: (m[:, :2] > 0).astype(np.float32) for s, m in x.items()}
    out = fit_linear(multi, x, labels)
    assert out.logits["valid"].shape == (50, 2)
    scores = multi.metrics(torch.from_numpy(out.logits["valid"]), torch.from_numpy(labels["valid"]))
    assert scores["macro_f1"] > 0.9


def test_boosting_stops_early_on_validation_and_reads_categories() -> None:
    rng = np.random.default_rng(3)
    task = ClassificationTask("multiclass", classes=["a", "b", "c", "d"])
    y = {s: _classes(120, 4, rng) for s in ("train", "valid", "test")}
    x = {s: np.column_stack([rng.normal(size=120), v + 2]) for s, v in y.items()}  # id column = class + 2
    fitted = fit_boosting(task, x, y, np.array([False, True]), seed=0)
    assert fitted.choice.endswith("iterations") and int(fitted.choice.split()[0]) < 500
    assert _accuracy(task, fitted.logits["test"], y["test"]) == 1.0
    again = fit_boosting(task, x, y, np.array([False, True]), seed=0)
    np.testing.assert_array_equal(fitted.logits["test"], again.logits["test"])
    with pytest.raises(ValueError, match=r"not fitted for multilabel"):
        fit_boosting(MultilabelTask(classes=["p"]), x, y, np.array([False, True]), seed=0)
