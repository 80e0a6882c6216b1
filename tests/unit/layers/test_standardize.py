"""FeatureStandardizer: identity until fitted, then training features at mean 0 and std 1 per dimension."""

from __future__ import annotations

import pytest
import torch

from omnifuse.layers.standardize import FeatureStandardizer


def test_identity_until_fitted() -> None:
    x = torch.randn(4, 3)
    assert torch.equal(FeatureStandardizer(3)(x), x)


def test_fitted_training_features_have_zero_mean_and_unit_std() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 3, generator=generator) * torch.tensor([0.05, 1.0, 20.0]) + 7.0
    standardize = FeatureStandardizer(3)
    standardize.fit(features)
    out = standardize(features)
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_a_constant_dimension_is_centred_not_blown_up() -> None:
    features = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    standardize = FeatureStandardizer(2)
    standardize.fit(features)
    assert standardize.scale[1] == 1.0
    torch.testing.assert_close(standardize(torch.tensor([[2.0, 6.0]])), torch.tensor([[0.0, 1.0]]))


def test_tokens_use_the_same_statistics_over_the_last_dimension() -> None:
    standardize = FeatureStandardizer(2)
    standardize.fit(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))  # mean (1, 2), std (1, 2)
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # (B=1, T=2, D=2)
    torch.testing.assert_close(standardize(tokens), torch.tensor([[[0.0, 0.0], [2.0, 2.0]]]))


def test_statistics_are_saved_with_the_weights() -> None:
    standardize = FeatureStandardizer(2)
    standardize.fit(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    restored = FeatureStandardizer(2)
    restored.load_state_dict(standardize.state_dict())
    assert set(standardize.state_dict()) == {"mean", "scale"}
    assert torch.equal(restored.mean, standardize.mean) and torch.equal(restored.scale, standardize.scale)


@pytest.mark.parametrize("shape", [(0, 2), (3, 4), (3,)])
def test_fit_refuses_features_of_another_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        FeatureStandardizer(2).fit(torch.zeros(shape))
