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
    total = len(targets)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence)
                     for b in reliability_bins(targets, probabilities, bins) if b.count))
