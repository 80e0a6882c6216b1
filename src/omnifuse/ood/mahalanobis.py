"""Mahalanobis distance of an embedding to its nearest training class, with a shrunk shared covariance.

The statistics are kept whitened: ``whitener`` W (D, D) with W W^T = Sigma^-1 and ``centres`` = mu_k W, so
the squared distance to class k is ||z W - mu_k W||^2: one (B, D) x (D, D) product per batch.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


def fit_whitened(embeddings: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centres (K, D), whitener (D, D)) of (N, D) embeddings in groups (N,) 0..K-1 (every group present).

    The covariance is the within-group one (each row minus its group's mean), shrunk towards a scaled
    identity by the Ledoit-Wolf estimate, so it stays invertible with fewer rows than dimensions.
    """
    from sklearn.covariance import LedoitWolf

    x = np.asarray(embeddings, dtype=np.float64)  # (N, D)
    labels = np.unique(groups)
    means = np.stack([x[groups == g].mean(axis=0) for g in labels])  # (K, D)
    residuals = x - means[np.searchsorted(labels, groups)]  # (N, D)
    covariance = LedoitWolf(assume_centered=True).fit(residuals).covariance_  # (D, D)
    scale = float(np.trace(covariance)) / covariance.shape[0] or 1.0
    covariance = covariance + 1e-6 * scale * np.eye(covariance.shape[0])  # a floor for a zero feature
    precision = np.linalg.inv(covariance)
    whitener = np.linalg.cholesky((precision + precision.T) / 2)  # (D, D): W W^T = Sigma^-1
    return (means @ whitener).astype(np.float32), whitener.astype(np.float32)


def nearest_distance(embeddings: Tensor, centres: Tensor, whitener: Tensor) -> Tensor:
    """(B,) squared Mahalanobis distance of (B, D) embeddings to the nearest (K, D) whitened centre."""
    white = embeddings.float() @ whitener  # (B, D)
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2: plain products, which every ONNX runtime has (cdist is not)
    squared = white.pow(2).sum(dim=1, keepdim=True) - 2 * white @ centres.T + centres.pow(2).sum(dim=1)
    return squared.clamp(min=0).amin(dim=1)  # (B,)
