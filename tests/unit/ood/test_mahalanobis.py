"""The Mahalanobis statistics: exact distances, and in- vs out-of-distribution embeddings separated."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from omnifuse.ood.mahalanobis import fit_whitened, nearest_distance


def _classes(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    groups = rng.integers(0, 3, n)
    means = np.eye(3, dim) * 4.0  # (3, D)
    return means[groups] + rng.normal(size=(n, dim)), groups


def test_distance_is_the_mahalanobis_distance_to_the_nearest_class() -> None:
    rng = np.random.default_rng(0)
    x, groups = _classes(rng, 300, 5)
    centres, whitener = fit_whitened(x, groups)
    means = np.stack([x[groups == g].mean(axis=0) for g in range(3)])
    covariance = LedoitWolf(assume_centered=True).fit(x - means[groups]).covariance_
    precision = np.linalg.inv(covariance)
    z = rng.normal(size=(7, 5)) * 3
    expected = np.min([np.einsum("nd,de,ne->n", z - m, precision, z - m) for m in means], axis=0)
    got = nearest_distance(torch.from_numpy(z).float(), torch.from_numpy(centres), torch.from_numpy(whitener))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-3)


def test_shifted_embeddings_score_higher() -> None:
    rng = np.random.default_rng(1)
    train, groups = _classes(rng, 400, 16)
    held_out, _ = _classes(rng, 200, 16)
    shifted = held_out + rng.normal(size=16) * 3  # every value moved the same way: another source
    centres, whitener = fit_whitened(train, groups)
    score = lambda a: nearest_distance(torch.from_numpy(a).float(), torch.from_numpy(centres),  # noqa: E731
                                       torch.from_numpy(whitener)).numpy()
    auroc = roc_auc_score(np.r_[np.zeros(200), np.ones(200)], np.r_[score(held_out), score(shifted)])
    assert auroc > 0.99


def test_fewer_rows_than_dimensions_stay_finite() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 40))
    x[:, 3] = 0.0  # a dead feature
    centres, whitener = fit_whitened(x, np.zeros(8, dtype=np.int64))
    got = nearest_distance(torch.randn(4, 40), torch.from_numpy(centres), torch.from_numpy(whitener))
    assert torch.isfinite(got).all() and (got >= 0).all()
