"""Tests of the tabular preprocessor: standardisation, missing cells, category vocabularies, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.errors import BadValueError, ModelDirError

COLUMNS = {"age": "numeric", "city": "categorical", "income": "numeric", "pet": "categorical"}
ROWS = [
    {"age": 20, "city": "Paris", "income": 1.0, "pet": "cat"},
    {"age": 30.0, "city": "Oslo", "income": None, "pet": "dog"},
    {"age": "40", "city": "Paris", "income": float("nan"), "pet": None},
    {"age": np.float32(50), "city": "Rome", "income": 3.0, "pet": "cat"},
]


@pytest.fixture
def prep() -> TabularPreprocessor:
    prep = TabularPreprocessor(COLUMNS)
    prep.fit(ROWS)
    return prep


def test_fit_learns_mean_std_and_vocab(prep: TabularPreprocessor) -> None:
    assert prep.numeric == ["age", "income"] and prep.categorical == ["city", "pet"]
    assert prep.mean["age"] == pytest.approx(35.0)
    assert prep.std["age"] == pytest.approx(math.sqrt(125.0))
    assert prep.mean["income"] == pytest.approx(2.0) and prep.std["income"] == pytest.approx(1.0)
    assert prep.vocab["city"] == ["<missing>", "<unk>", "Paris", "Oslo", "Rome"]
    assert prep.vocab["pet"] == ["<missing>", "<unk>", "cat", "dog"]
    assert prep.cardinalities() == [5, 4]


def test_call_standardises_and_flags_missing(prep: TabularPreprocessor) -> None:
    out = prep({"age": 35 + math.sqrt(125.0), "city": "Oslo", "income": "", "pet": "dog"})
    assert out["numeric"].dtype == torch.float32
    assert out["numeric"].tolist() == pytest.approx([1.0, 0.0])
    assert out["numeric_missing"].tolist() == [0.0, 1.0]
    assert out["categorical"].dtype == torch.long
    assert out["categorical"].tolist() == [3, 3]


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, "", "  ", "NaN"])
def test_numeric_missing_values(prep: TabularPreprocessor, missing: object) -> None:
    out = prep({"age": missing, "city": "Paris", "income": 2.0, "pet": "cat"})
    assert out["numeric"].tolist() == [0.0, 0.0]
    assert out["numeric_missing"].tolist() == [1.0, 0.0]


def test_categorical_missing_and_unseen(prep: TabularPreprocessor) -> None:
    out = prep({"age": 1, "city": "Berlin", "income": 1, "pet": float("nan")})
    assert out["categorical"].tolist() == [1, 0]  # <unk>, <missing>
    assert prep({"age": 1, "income": 1})["categorical"].tolist() == [0, 0]  # absent columns are missing


def test_integral_floats_and_ints_are_one_category() -> None:
    prep = TabularPreprocessor({"zip": "categorical"})
    prep.fit([{"zip": 7501.0}, {"zip": None}])
    assert prep.vocab["zip"] == ["<missing>", "<unk>", "7501"]
    assert prep({"zip": 7501})["categorical"].tolist() == [2]
    assert prep({"zip": "7501"})["categorical"].tolist() == [2]


def test_stray_string_in_numeric_column_raises(prep: TabularPreprocessor) -> None:
    with pytest.raises(
        BadValueError, match="numeric column 'age': 'abc' is not a number; clean the column or declare it"
    ):
        prep({"age": "abc", "city": "Paris", "income": 1.0, "pet": "cat"})


@pytest.mark.parametrize("value", [float("inf"), -np.inf, "inf"])
def test_infinite_numeric_value_raises(prep: TabularPreprocessor, value: object) -> None:
    with pytest.raises(BadValueError, match="'income': .* is infinite; replace inf or leave the cell empty"):
        prep({"age": 1, "city": "Paris", "income": value, "pet": "cat"})


def test_fit_leaves_bad_numbers_to_the_row_check() -> None:
    """fit ignores an unusable cell (its row is reported later, with its number); __call__ rejects it."""
    prep = TabularPreprocessor({"x": "numeric"})
    prep.fit([{"x": 1.0}, {"x": "1,5"}, {"x": 3.0}])
    assert prep.state_dict()["mean"]["x"] == pytest.approx(2.0)
    with pytest.raises(BadValueError, match="'x': '1,5' is not a number"):
        prep({"x": "1,5"})


def test_constant_or_empty_numeric_column_has_unit_std() -> None:
    prep = TabularPreprocessor({"c": "numeric", "e": "numeric"})
    prep.fit([{"c": 4, "e": None}, {"c": 4, "e": None}])
    assert (prep.mean, prep.std) == ({"c": 4.0, "e": 0.0}, {"c": 1.0, "e": 1.0})
    assert prep({"c": 6, "e": 2})["numeric"].tolist() == [2.0, 2.0]


def test_empty_groups_still_emit_every_key() -> None:
    prep = TabularPreprocessor({"x": "numeric"})
    prep.fit([{"x": 1.0}])
    out = prep({"x": 2.0})
    assert out["categorical"].shape == (0,) and out["categorical"].dtype == torch.long
    only_cat = TabularPreprocessor({"k": "categorical"})
    only_cat.fit([{"k": "a"}])
    out = only_cat({"k": "a"})
    assert out["numeric"].shape == (0,) and out["numeric_missing"].shape == (0,)


def test_blank_is_all_missing(prep: TabularPreprocessor) -> None:
    blank = prep.blank()
    assert blank["numeric"].tolist() == [0.0, 0.0]
    assert blank["numeric_missing"].tolist() == [1.0, 1.0]
    assert blank["categorical"].tolist() == [0, 0]
    assert {k: v.dtype for k, v in blank.items()} == {
        k: v.dtype for k, v in prep({"age": 1, "city": "Paris"}).items()
    }


def test_state_round_trip_through_json(prep: TabularPreprocessor) -> None:
    state = json.loads(json.dumps(prep.state_dict()))
    restored = TabularPreprocessor(COLUMNS)
    restored.load_state_dict(state)
    for row in [*ROWS, {"age": 99, "city": "Lima", "income": None, "pet": "dog"}]:
        expected, got = prep(row), restored(row)
        assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_load_state_with_other_columns_raises(prep: TabularPreprocessor) -> None:
    other = TabularPreprocessor({"age": "numeric"})
    with pytest.raises(ModelDirError, match="saved tabular columns .* differ .* use the config.yaml saved"):
        other.load_state_dict(prep.state_dict())


@pytest.mark.parametrize("columns", [{"txt": "text"}, {}])
def test_bad_column_types_raise(columns: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="tabular columns must be 'numeric' or 'categorical'"):
        TabularPreprocessor(columns)
