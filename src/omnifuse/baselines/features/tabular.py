"""Tabular features from the model's own tabular preprocessing: the raw columns, two ways.

``TabularPreprocessor`` has already standardised the numbers with the training mean and std, flagged
missing numbers and given every category an id (0 missing, 1 unseen, then the training categories), and
the rows it rejected are the model's bad rows. From those tensors:

- for linear models: the standardised numbers, the missing flags of the columns that have a missing value
  in training, and a one-hot vector per categorical column (the ``MAX_ONE_HOT - 3`` most frequent training
  categories, the missing and unseen ids, and one slot shared by the rarer categories);
- for gradient boosting: the numbers (NaN where missing, which boosting handles natively) and the category
  ids as categorical features (as plain numbers when a column has more categories than boosting bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omnifuse.data.collate import Example
from omnifuse.data.preprocess.tabular import TabularPreprocessor

MAX_BOOSTING_CATEGORIES = 254  # HistGradientBoosting bins categories into at most 255 bins, one for NaN
MAX_ONE_HOT = 100  # one-hot width per column: ids are ranked by training frequency, rarer ones share the last


def _stack(examples: Sequence[Example], name: str, key: str) -> np.ndarray:
    """(N, K) of one tensor of input ``name`` over the rows."""
    return np.stack([ex.inputs[name][key].numpy() for ex in examples]).astype(np.float64)


@dataclass
class TabularFeatures:
    """Feature matrices of the tabular input, shaped by the fitted preprocessor and the training rows.

    Args:
        preprocessor: the fitted tabular preprocessor (its vocabularies give the one-hot widths).
        name: the model input name (``tabular``).
    """

    preprocessor: TabularPreprocessor
    name: str = "tabular"

    def fit(self, train: Sequence[Example]) -> TabularFeatures:
        """Remembers which numeric columns have a missing value in the training rows."""
        self.flagged: np.ndarray = np.zeros(0, dtype=bool)  # (N_numeric,)
        if self.preprocessor.numeric:
            self.flagged = np.asarray(_stack(train, self.name, "numeric_missing").any(axis=0))
        return self

    def linear(self, rows: Sequence[Example]) -> np.ndarray:
        """(N, numbers + flags + one-hot widths) float64 for linear models."""
        parts = []
        if self.preprocessor.numeric:
            parts += [_stack(rows, self.name, "numeric"),
                      _stack(rows, self.name, "numeric_missing")[:, self.flagged]]
        if self.preprocessor.categorical:
            ids = _stack(rows, self.name, "categorical").astype(np.int64)  # (N, K)
            for column, width in enumerate(self.preprocessor.cardinalities()):
                width = min(width, MAX_ONE_HOT)
                one_hot = np.zeros((len(rows), width))  # (N, width)
                one_hot[np.arange(len(rows)), np.minimum(ids[:, column], width - 1)] = 1.0
                parts.append(one_hot)
        return np.concatenate(parts, axis=1)

    def boosting(self, rows: Sequence[Example]) -> np.ndarray:
        """(N, numbers + categorical columns) float64 for gradient boosting, NaN where a number is missing."""
        parts = []
        if self.preprocessor.numeric:
            numbers = _stack(rows, self.name, "numeric")
            numbers[_stack(rows, self.name, "numeric_missing") > 0] = np.nan
            parts.append(numbers)
        if self.preprocessor.categorical:
            parts.append(_stack(rows, self.name, "categorical"))
        return np.concatenate(parts, axis=1)

    def categorical_mask(self) -> np.ndarray:
        """(columns of ``boosting``,) bool: True for the category ids boosting may treat as categories."""
        numeric = [False] * len(self.preprocessor.numeric)
        categories = [width <= MAX_BOOSTING_CATEGORIES for width in self.preprocessor.cardinalities()]
        return np.array(numeric + categories, dtype=bool)
