"""Reliability bins and the expected calibration error, on rows whose calibration is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from omnifuse.evaluation.calibration import (
    calibration_section,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)
from omnifuse.evaluation.metrics import classification_metrics


def _rows(confidence: float, right: int, wrong: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-class rows whose top probability is ``confidence`` on class 0; ``right`` of them are class 0."""
    probabilities = np.tile([confidence, 1.0 - confidence], (right + wrong, 1))  # (N, 2)
    return np.array([0] * right + [1] * wrong), probabilities


def test_a_calibrated_model_scores_zero_and_an_overconfident_one_its_gap() -> None:
    targets, probabilities = _rows(0.8, right=8, wrong=2)  # says 0.8, right 80% of the time
    assert expected_calibration_error(targets, probabilities) == pytest.approx(0.0, abs=1e-12)
    targets, probabilities = _rows(0.99, right=8, wrong=2)  # says 0.99, right 80%
    assert expected_calibration_error(targets, probabilities) == pytest.approx(0.19)


def test_bins_weight_the_gap_by_their_share_of_rows() -> None:
    t1, p1 = _rows(0.95, right=3, wrong=1)  # bin [0.933, 1]: confidence 0.95, accuracy 0.75
    t2, p2 = _rows(0.6, right=6, wrong=0)  # bin [0.6, 0.667): confidence 0.6, accuracy 1.0
    targets, probabilities = np.concatenate([t1, t2]), np.concatenate([p1, p2])
    expected = 4 / 10 * 0.2 + 6 / 10 * 0.4
    assert expected_calibration_error(targets, probabilities) == pytest.approx(expected)
    bins = reliability_bins(targets, probabilities)
    assert len(bins) == 15 and sum(b.count for b in bins) == 10
    used = [b for b in bins if b.count]
    assert [(b.count, b.confidence, b.accuracy) for b in used] == [(6, 0.6, 1.0), (4, 0.95, 0.75)]
    assert used[0].lower == pytest.approx(0.6) and used[1].upper == 1.0
    assert all(np.isnan(b.accuracy) for b in bins if not b.count)


def test_a_probability_of_one_lands_in_the_last_bin() -> None:
    bins = reliability_bins(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]), bins=4)
    assert [b.count for b in bins] == [0, 0, 0, 2] and bins[-1].accuracy == 1.0


def test_classification_metrics_carry_the_ece() -> None:
    targets, probabilities = _rows(0.99, right=8, wrong=2)
    metrics = classification_metrics(targets, probabilities, ["a", "b"])
    assert metrics["ece"] == pytest.approx(0.19)
    assert classification_metrics(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), ["a", "b"])["ece"] is None


def _sampled(true_scale: float, seen_scale: float, rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z * true_scale); the model's logits are z * seen_scale."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(rows, 5))  # (N, C)
    p = softmax(z * true_scale)
    targets = np.array([rng.choice(5, p=row) for row in p])
    return z * seen_scale, targets


def test_fit_temperature_recovers_an_over_confident_models_scale() -> None:
    logits, targets = _sampled(true_scale=1.0, seen_scale=3.0)  # three times too sure
    temperature = fit_temperature(logits, targets)
    assert temperature is not None and temperature == pytest.approx(3.0, rel=0.1)
    summary = calibration_summary(logits, targets, temperature)
    assert summary["ece"] < 0.03 < 0.15 < summary["ece_uncalibrated"]
    shy_logits, shy_targets = _sampled(true_scale=2.0, seen_scale=1.0)  # half as sure as it should be
    shy = fit_temperature(shy_logits, shy_targets)
    assert shy is not None and shy == pytest.approx(0.5, rel=0.1)
    text = calibration_section(summary)
    assert f"softmax(logits / {temperature:.3f})" in text and f"**{summary['ece']:.4f}**" in text


def test_rows_all_right_fit_a_finite_sharper_temperature() -> None:
    rng = np.random.default_rng(0)
    targets = np.arange(99) % 3
    logits = rng.normal(size=(99, 3)) * 0.3
    logits[np.arange(99), targets] += 2.0  # all right, top probability about 0.78: under-confident
    temperature = fit_temperature(logits, targets)
    assert temperature is not None and 0.05 < temperature < 1.0  # sharpened, not to the end of the range
    confidence = softmax(logits, temperature).max(axis=1).mean()
    assert 0.95 < confidence < 0.999  # about N / (N + 1) = 0.99: the add-one prior
    assert fit_temperature(np.zeros((30, 3)), np.arange(30) % 3) is None  # a flat loss: no optimum


def test_softmax_with_a_temperature() -> None:
    logits = np.array([[2.0, 0.0]])
    assert softmax(logits, 2.0)[0, 0] == pytest.approx(np.exp(1.0) / (np.exp(1.0) + 1.0))
    assert softmax(logits).sum() == pytest.approx(1.0)
