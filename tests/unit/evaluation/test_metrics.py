"""Metric functions on numpy arrays: hand-computed values, undefined cases as None, JSON without NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from omnifuse.evaluation.metrics import (
    classification_metrics,
    classification_roc_auc,
    clean,
    multilabel_metrics,
    regression_metrics,
)


def test_clean_makes_plain_json() -> None:
    value = {"a": np.float32(0.5), "b": float("nan"), "c": np.array([1, 2]), 3: [np.inf, np.int64(4)]}
    out = clean(value)
    assert out == {"a": 0.5, "b": None, "c": [1, 2], "3": [None, 4]}
    json.dumps(out, allow_nan=False)


def test_classification_three_classes() -> None:
    targets = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.6, 0.3]])
    m = classification_metrics(targets, probabilities, ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(0.75)
    # x: f1 1; y: P 1/2 R 1 -> 2/3; z: P 1 R 1/2 -> 2/3
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((1 + 2 / 3 + 2 * 2 / 3) / 4)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    expected_auc = roc_auc_score(targets, probabilities, multi_class="ovr", average="macro")
    assert m["roc_auc"] == pytest.approx(expected_auc)
    assert m["n"] == 4


def test_roc_auc_undefined_cases() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    assert classification_roc_auc(np.array([0, 1]), probabilities) is None  # class 2 absent
    assert classification_roc_auc(np.array([1, 1]), probabilities[:, :2]) is None
    assert classification_roc_auc(np.array([0, 1]), np.array([[0.6, 0.4], [0.3, 0.7]])) == pytest.approx(1.0)


def test_log_loss_survives_zero_probabilities() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]]), ["a", "b"])
    assert m["log_loss"] is not None and m["log_loss"] > 10  # clipped, finite
    json.dumps(m, allow_nan=False)


def test_empty_sets_give_none() -> None:
    c = classification_metrics(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), ["a", "b"])
    assert c["accuracy"] is None and c["confusion_matrix"] == [[0, 0], [0, 0]]
    ml = multilabel_metrics(np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"])
    assert ml["micro_f1"] is None
    assert regression_metrics(np.zeros(0), np.zeros(0))["rmse"] is None
    json.dumps([c, ml], allow_nan=False)


def test_multilabel_threshold() -> None:
    targets = np.array([[1, 0], [0, 1]])
    probabilities = np.array([[0.6, 0.4], [0.4, 0.6]])
    assert multilabel_metrics(targets, probabilities, ["a", "b"])["subset_accuracy"] == 1.0
    assert multilabel_metrics(targets, probabilities, ["a", "b"], threshold=0.7)["subset_accuracy"] == 0.0


def test_regression_hand_computed() -> None:
    m = regression_metrics(np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    assert m == {"n": 2, "rmse": pytest.approx(1.0), "mae": pytest.approx(1.0), "r2": pytest.approx(0.0)}
