"""Calibration of class probabilities: the reliability bins and the expected calibration error (ECE).

A model is calibrated when, of the rows it gives a top-class probability near p, a share p is right. The rows
are put in ``bins`` equal-width bins of their top probability; ECE is the mean over bins of
|accuracy - mean confidence|, weighted by the bins' shares of the rows (Guo et al. 2017, "On Calibration of
Modern Neural Networks"). 0 is perfect; a model that says 0.99 and is right 80% of the time scores 0.19.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15  # Guo et al.'s choice


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin: its edges, row count, mean top-class probability and accuracy (NaN when empty)."""

    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(
    targets: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """(N,) class indices and (N, C) probabilities -> ``bins`` equal-width bins of the top probability.

    A top probability on an edge goes to the bin above it, and 1.0 to the last bin.
    """
    confidence = probabilities.max(axis=1)  # (N,)
    correct = (probabilities.argmax(axis=1) == targets).astype(np.float64)  # (N,)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)  # (N,)
    out = []
    for b in range(bins):
        rows = which == b
        count = int(rows.sum())
        out.append(ReliabilityBin(
            float(edges[b]), float(edges[b + 1]), count,
            float(confidence[rows].mean()) if count else float("nan"),
            float(correct[rows].mean()) if count else float("nan"),
        ))
    return out


def expected_calibration_error(targets: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE of (N, C) probabilities against (N,) class indices, in [0, 1]; N must be > 0."""
    return ece_of(reliability_bins(targets, probabilities, bins))


def ece_of(bins: list[ReliabilityBin]) -> float:
    """The ECE of reliability bins: their |accuracy - confidence| weighted by their shares of the rows."""
    total = sum(b.count for b in bins)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins if b.count))


MIN_CALIBRATION_ROWS = 20  # fewer validation rows than this fit no temperature (it would fit their noise)
TEMPERATURE_RANGE = (0.05, 20.0)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float | None:
    """The temperature T > 0 that minimises the log loss of ``softmax(logits / T)`` on these rows.

    Temperature scaling (Guo et al. 2017): one number, fitted on validation rows, that softens (T > 1) or
    sharpens (T < 1) every probability without changing which class is the most likely. (N, C) logits,
    (N,) class indices; a bounded search on log T within ``TEMPERATURE_RANGE``. Each row's target keeps
    1 - 1/(N + 1) of its weight on its class and spreads the rest over all classes (an add-one prior): on rows
    the model gets all right, the plain log loss would fall all the way to T -> 0 (certainty from a few
    hundred rows); with the prior the optimum is a finite T whose confidence is about N / (N + 1).

    Returns:
        T, or None when no T is better than an end of the range (e.g. every row's logits are equal).
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    z = logits.astype(np.float64)  # (N, C)
    prior = 1.0 / (len(targets) + 1)
    soft = np.full(z.shape, prior / z.shape[1])  # (N, C) targets
    soft[np.arange(len(targets)), targets] += 1.0 - prior

    def loss(log_t: float) -> float:
        return float(-(soft * log_softmax(z / np.exp(log_t), axis=1)).sum(axis=1).mean())

    low, high = (float(np.log(t)) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    best = loss(found.x)
    # no interior optimum: an end of the range is as good (a flat loss, for logits that are all equal)
    at_an_end = min(loss(low), loss(high)) <= best + 1e-9
    return None if at_an_end else float(np.exp(found.x))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) logits -> (N, C) probabilities of ``softmax(logits / temperature)``, in float64."""
    from scipy.special import softmax as scipy_softmax

    return np.asarray(scipy_softmax(logits.astype(np.float64) / temperature, axis=1))


def calibration_summary(logits: np.ndarray, targets: np.ndarray, temperature: float) -> dict[str, float]:
    """What the temperature does on these rows (N > 0): ``temperature``, ``ece_uncalibrated`` (plain
    softmax) and ``ece`` (the probabilities the model reports)."""
    return {
        "temperature": temperature,
        "ece_uncalibrated": expected_calibration_error(targets, softmax(logits)),
        "ece": expected_calibration_error(targets, softmax(logits, temperature)),
    }


def calibration_section(summary: dict[str, float]) -> str:
    """The report's "Calibration" paragraph."""
    return (f"The probabilities are temperature-scaled: softmax(logits / {summary['temperature']:.3f}), the "
            "temperature fitted on the validation rows after training (`training.calibrate`). Expected "
            f"calibration error on these rows: {summary['ece_uncalibrated']:.4f} with the plain softmax, "
            f"**{summary['ece']:.4f}** calibrated (0 is perfect; see plots/reliability.png).")
