"""Schema inference: every column type and label task, each with the statistic that decided it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from omnifuse.data.io import read_table
from omnifuse.data.schema import infer_column_type, infer_label, infer_schema
from omnifuse.errors import DataError

N = 24


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    """A CSV with real PNG and WAV files beside it and one column of each type."""
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "audio").mkdir()
    rows = []
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(tmp_path / f"img/{i}.png")
        sf.write(tmp_path / f"audio/{i}.wav", (0.1 * rng.standard_normal(400)).astype("float32"), 8000)
        rows.append({
            "id": i + 100,
            "sku": f"SKU-{i:04d}",
            "photo": f"img/{i}.png",
            "clip": f"audio/{i}.wav",
            "review": f"review number {i}: the product is {'good' if i % 2 else 'bad'} and it arrived late",
            "price": round(float(rng.normal(10, 3)), 2),
            "color": ["red", "green", "blue"][i % 3],
            "label": ["yes", "no"][i % 2],
        })
    pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
    return tmp_path


def test_infer_schema_finds_every_type_with_its_reason(table_dir: Path) -> None:
    label, guesses = infer_schema(read_table(table_dir / "table.csv"), "label")
    by_name = {g.name: g for g in guesses}
    assert list(by_name) == ["id", "sku", "photo", "clip", "review", "price", "color"]
    assert {n: g.type for n, g in by_name.items()} == {
        "id": "ignore", "sku": "ignore", "photo": "image", "clip": "audio", "review": "text",
        "price": "numeric", "color": "categorical",
    }
    assert by_name["photo"].reason == "image: 100% of values end in .png and 20/20 sampled files exist"
    assert by_name["clip"].reason == "audio: 100% of values end in .wav and 20/20 sampled files exist"
    assert by_name["id"].reason == "ignore: the name looks like an id and 24/24 values are distinct"
    assert "all 24 values are distinct and contain no spaces" in by_name["sku"].reason
    assert by_name["review"].reason.startswith(
        "text: 24 distinct values in 24 rows (categorical needs <= 20) and mean length"
    )
    assert by_name["color"].reason.startswith("categorical: 3 distinct values (<= 20) with mean length")
    assert by_name["price"].reason.startswith("numeric: numbers with")
    assert (label.column, label.task, label.delimiter) == ("label", "binary", "|")


def test_media_paths_that_do_not_exist_are_counted(tmp_path: Path) -> None:
    series = pd.Series([f"clips/{i}.mp4" for i in range(9)] + ["notes.txt"], name="video")
    guess = infer_column_type(series, tmp_path)
    assert guess.type == "video"
    assert guess.reason.startswith("video: 90% of values end in .mp4 and 0/10 sampled files exist")
    assert str(tmp_path) in guess.reason


def test_too_few_media_extensions_is_not_media(tmp_path: Path) -> None:
    series = pd.Series([f"{i}.png" for i in range(8)] + ["some words here", "more words here"], name="x")
    assert infer_column_type(series, tmp_path).type != "image"


def test_uppercase_extensions_and_missing_cells(tmp_path: Path) -> None:
    series = pd.Series(["a.JPG", None, "b.jpeg", ""], name="pic")
    guess = infer_column_type(series, tmp_path)
    assert guess.type == "image" and ".jpeg/.jpg" in guess.reason and "0/2 sampled" in guess.reason


@pytest.mark.parametrize(
    "values, expected, reason",
    [
        ([1, 2, 3, 4, 5] * 4, "numeric", "5 distinct evenly spaced integers (1, 2, 3, 4, 5), read as a"),
        ([3, 17, 42, 99] * 5, "categorical", "4 distinct integers, unevenly spaced (3, 17, 42, 99)"),
        ([0, 1] * 10, "numeric", "2 distinct evenly spaced integers"),
        (list(range(30)), "ignore", "the 30 values are the consecutive integers 0..29 (a row index)"),
        ([0.5 * i * i for i in range(30)], "numeric", "numbers with 30 distinct values in [0, 420.5]"),
        ([1.0, np.nan, 2.5, 7.0], "numeric", "numbers with 3 distinct values"),
        ([True, False, True], "categorical", "boolean values (2 distinct)"),
        ([None, np.nan, ""], "ignore", "all 3 values are missing"),
    ],
)
def test_numeric_bool_and_empty_columns(values: list[object], expected: str, reason: str) -> None:
    guess = infer_column_type(pd.Series(values, name="x"), Path("."))
    assert guess.type == expected and reason in guess.reason


def test_few_distinct_words_are_not_ids_in_a_tiny_table() -> None:
    guess = infer_column_type(pd.Series(["red", "green", "blue"], name="color"), Path("."))
    assert guess.type == "categorical"


def test_datetime_is_ignored_with_the_fix() -> None:
    series = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]), name="when")
    guess = infer_column_type(series, Path("."))
    assert guess.type == "ignore" and "convert them to numbers or text" in guess.reason


def test_many_short_strings_are_text_and_long_strings_are_text() -> None:
    many = pd.Series([f"w{i % 40} x" for i in range(200)], name="tag")
    guess = infer_column_type(many, Path("."))
    assert guess.reason == (
        "text: 40 distinct values in 200 rows (categorical needs <= 20); mean length 4.8 chars"
    )
    few_long = pd.Series(["a rather long description that goes on and on " + str(i % 3) for i in range(30)])
    guess = infer_column_type(few_long.rename("desc"), Path("."))
    assert guess.type == "text" and guess.reason == (
        "text: mean length 47.0 chars (categorical needs < 30); 3 distinct values"
    )
    share = pd.Series([f"c{i % 30}" for i in range(1000)], name="code")  # 30 <= 5% of 1000 rows
    assert infer_column_type(share, Path(".")).reason.startswith("categorical: 30 distinct values (<= 50)")


@pytest.mark.parametrize(
    "values, task, reason",
    [
        ([0.1 * i * i for i in range(40)], "regression", "regression: 40 distinct numbers in 40 rows"),
        (list(range(100)), "regression", "regression: 100 distinct integers"),
        ([1, 0, 1, 1], "binary", "binary: 2 distinct values (0, 1)"),
        (["pos", "neg", "pos"], "binary", "binary: 2 distinct values ('neg', 'pos')"),
        ([True, False], "binary", "binary: 2 distinct values"),
        ([0, 1, 2, 3, 2, 1], "multiclass", "multiclass: 4 distinct integers (<= 20): 0, 1, 2, 3"),
        ([0.0, 1.0, 2.0, np.nan], "multiclass", "multiclass: 3 distinct integers"),
        (["cat", "dog", "bird", "cat"], "multiclass", "multiclass: 3 distinct values: 'bird', 'cat', 'dog'"),
        (["a|b", "b", "c", "a|c"], "multilabel", "multilabel: 50% of rows hold several labels"),
    ],
)
def test_infer_label_tasks(values: list[object], task: str, reason: str) -> None:
    guess = infer_label(pd.Series(values, name="y"))
    assert guess.task == task and guess.reason.startswith(reason) and guess.column == "y"


def test_infer_label_custom_delimiter() -> None:
    guess = infer_label(pd.Series(["a;b", "b", "c;a"], name="tags"), delimiter=";")
    assert guess.task == "multilabel" and guess.delimiter == ";"


def test_rare_delimiter_stays_multiclass() -> None:
    values = ["a", "b", "c"] * 10 + ["a|b"]
    assert infer_label(pd.Series(values, name="y")).task == "multiclass"


def test_label_errors() -> None:
    with pytest.raises(DataError, match="label column 'y' has no values; fill it in"):
        infer_label(pd.Series([None, ""], name="y"))
    with pytest.raises(DataError, match="label column 'y' has the single value 'a' in every row; a model"):
        infer_label(pd.Series(["a", "a", None], name="y"))


def test_missing_label_column_suggests_a_name(table_dir: Path) -> None:
    table = read_table(table_dir / "table.csv")
    with pytest.raises(DataError, match=r"label column 'lable' is not in table .*did you mean 'label'\? "
                       r"available columns: id, sku, photo"):
        infer_schema(table, "lable")
    with pytest.raises(DataError, match=r"column 'zzz' is not in table '.*table\.csv'; available columns"):
        infer_schema(table, "zzz")
