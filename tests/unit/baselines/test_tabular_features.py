"""Tabular baseline features from the model's tabular preprocessing: one-hot for linear models, ids and
NaN for gradient boosting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omnifuse.baselines.features import tabular as tabular_features
from omnifuse.baselines.features.tabular import TabularFeatures
from omnifuse.data.collate import Example
from omnifuse.data.preprocess.tabular import TabularPreprocessor

ROWS = [{"x": 1.0, "c": "a"}, {"x": None, "c": "b"}, {"x": 3.0, "c": "a"}, {"x": 5.0, "c": None}]


def _examples(pre: TabularPreprocessor, rows: list[dict[str, object]]) -> list[Example]:
    return [Example(i, {"tabular": pre(r)}, {"tabular": True}) for i, r in enumerate(rows)]


def test_linear_and_boosting_matrices() -> None:
    pre = TabularPreprocessor({"x": "numeric", "c": "categorical"})
    pre.fit(ROWS)
    examples = _examples(pre, ROWS)
    features = TabularFeatures(pre).fit(examples)
    linear = features.linear(examples)
    # x standardised, x's missing flag, one-hot over <missing>, <unk>, a, b
    assert linear.shape == (4, 1 + 1 + 4)
    assert linear[:, 1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert linear[:, 2:].tolist() == [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 0]]
    boosting = features.boosting(examples)
    assert boosting.shape == (4, 2) and math.isnan(boosting[1, 0]) and boosting[:, 1].tolist() == [2, 3, 2, 0]
    assert features.categorical_mask().tolist() == [False, True]
    unseen = features.linear(_examples(pre, [{"x": 2.0, "c": "zebra"}]))
    assert unseen[0, 2:].tolist() == [0, 1, 0, 0]  # the <unk> slot


def test_no_missing_number_in_training_means_no_flag_column_and_wide_columns_are_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"x": float(i), "c": f"k{i % 7}"} for i in range(20)]
    pre = TabularPreprocessor({"x": "numeric", "c": "categorical"})
    pre.fit(rows)
    monkeypatch.setattr(tabular_features, "MAX_ONE_HOT", 5)
    examples = _examples(pre, rows)
    linear = TabularFeatures(pre).fit(examples).linear(examples)
    assert linear.shape == (20, 1 + 5)  # no flag; 9 ids (2 specials + 7 categories) share 5 slots
    assert np.all(linear[:, 1:].sum(axis=1) == 1.0)
