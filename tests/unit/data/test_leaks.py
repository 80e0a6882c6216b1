"""Leak and identifier checks: each kind found with its message and share, and the look-alikes left alone."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.data.leaks import (
    Finding,
    find_column_problems,
    find_config_problems,
    print_findings,
    write_findings,
)

CLASSES = ["coat", "shirt", "bag", "boot"]


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.array(CLASSES)[np.random.default_rng(seed).integers(0, len(CLASSES), n)]


def _check(columns: dict[str, object], label: object, task: str = "multiclass",
           types: dict[str, str] | None = None) -> dict[str, Finding]:
    frame = pd.DataFrame({**columns, "label": label})
    kinds = types or {name: "text" for name in columns}
    return {f.column: f for f in find_column_problems(frame, kinds, "label", task)}


# -- leaks -----------------------------------------------------------------------------------------


def test_a_caption_that_names_the_label_is_a_leak_with_the_message() -> None:
    labels = _labels(200)
    found = _check({"caption": [f"a photo of a {y}" for y in labels]}, labels)
    assert found["caption"].kind == "leak" and found["caption"].share == 1.0
    assert found["caption"].message == (
        "column 'caption' predicts the label exactly in 100% of training rows: a leak? set `type: ignore`"
    )


def test_a_numeric_encoding_of_the_label_is_a_leak() -> None:
    labels = _labels(200)
    codes = pd.factorize(labels)[0] * 10 + 3  # e.g. a class id kept beside the class name
    found = _check({"code": codes}, labels, types={"code": "numeric"})
    assert found["code"].kind == "leak"


def test_a_nearly_one_to_one_column_is_a_leak_with_its_share() -> None:
    labels = _labels(1000)
    caption = np.array([f"a {y}" for y in labels])
    caption[:5] = "a coat"  # 5 rows disagree (or happen to agree) with their label
    found = _check({"caption": caption}, labels)
    wrong = int((labels[:5] != "coat").sum())
    assert found["caption"].share == pytest.approx(1 - wrong / 1000)
    assert f"predicts the label in {100 - wrong / 10:.1f}% of training rows" in found["caption"].message


def test_an_informative_category_with_several_labels_per_value_is_not_a_leak() -> None:
    rng = np.random.default_rng(1)
    labels = _labels(500)
    # 90% of rows: the colour follows the label; 10%: any colour. Useful, but not one-to-one.
    colour = np.where(rng.random(500) < 0.9, pd.factorize(labels)[0], rng.integers(0, 4, 500))
    assert _check({"colour": colour.astype(str)}, labels, types={"colour": "categorical"}) == {}


def test_a_column_that_only_matches_a_dominant_label_is_not_a_leak() -> None:
    labels = np.array(["ok"] * 995 + ["fraud"] * 5)
    flag = np.array(["a"] * 500 + ["b"] * 500)  # 99.5% right by always saying 'ok'
    assert _check({"flag": flag}, labels, types={"flag": "categorical"}) == {}


def test_unique_numbers_are_no_leak_and_no_id() -> None:
    rng = np.random.default_rng(2)
    labels = _labels(300)
    assert _check({"weight": rng.normal(size=300)}, labels, types={"weight": "numeric"}) == {}


def test_a_tiny_table_is_too_small_to_call_a_leak() -> None:
    assert _check({"colour": ["r", "g", "r", "g"]}, ["a", "b", "a", "b"]) == {}


def test_regression_leak_is_a_near_perfect_correlation() -> None:
    rng = np.random.default_rng(3)
    price = rng.normal(100, 20, 400)
    found = _check({"price_eur": price * 0.92 + 1.0, "size": price + rng.normal(0, 10, 400)}, price,
                   task="regression", types={"price_eur": "numeric", "size": "numeric"})
    assert list(found) == ["price_eur"] and found["price_eur"].kind == "leak"
    message = found["price_eur"].message
    assert "has correlation +1.0000 with the label on 400 training rows: a leak?" in message


def test_contrastive_has_no_leak_check_but_ids_are_found() -> None:
    labels = _labels(100)
    frame = pd.DataFrame({"caption": [f"a {y}" for y in labels], "uid": [f"u{i:05d}" for i in range(100)]})
    found = find_column_problems(frame, {"caption": "text", "uid": "text"}, None, "contrastive")
    assert [(f.column, f.kind) for f in found] == [("uid", "id")]


# -- row identifiers -------------------------------------------------------------------------------


def test_integer_row_numbers_and_uuids_are_ids() -> None:
    rng = np.random.default_rng(4)
    labels = _labels(200)
    found = _check(
        {"row": rng.permutation(200) + 1000, "uuid": [f"{rng.integers(2**62):016x}-{i}" for i in range(200)],
         "user_id": rng.integers(10**6, 10**9, 200)},
        labels, types={"row": "numeric", "uuid": "categorical", "user_id": "numeric"},
    )
    assert {n: f.kind for n, f in found.items()} == {"row": "id", "uuid": "id", "user_id": "id"}
    assert found["row"].message == (
        "column 'row' has 200 distinct values in 200 non-empty training rows (100%): a row id? "
        "set `type: ignore`"
    )


def test_codes_that_are_mostly_distinct_are_ids_with_their_share() -> None:
    codes = [f"SKU-{i:04d}" for i in range(97)] + ["SKU-0001"] * 3
    found = _check({"sku": codes}, _labels(100))
    assert found["sku"].kind == "id" and found["sku"].share == pytest.approx(0.97)
    assert "(97.0%)" in found["sku"].message


def test_media_paths_free_text_words_and_counts_are_not_ids() -> None:
    rng = np.random.default_rng(5)
    n = 200
    columns = {
        "photo": [f"img/{i}.png" for i in range(n)],
        "clip": [f"clip_{i}.WAV" for i in range(n)],  # by its extension, even if typed as text
        "review": [f"parcel {i} came late" for i in range(n)],
        "word": [f"w{'abcdefghij'[i % 10]}{'klmnopqrst'[i // 10 % 10]}{'uvw'[i // 100]}" for i in range(n)],
        "income": rng.integers(20_000, 2_000_000, n),  # unsorted, sparse: a quantity, not an id
    }
    types = {"photo": "image", "clip": "text", "review": "text", "word": "categorical", "income": "numeric"}
    assert _check(columns, _labels(n), types=types) == {}


def test_half_distinct_codes_are_not_ids() -> None:
    assert _check({"shop": [f"S{i % 50}" for i in range(100)]}, _labels(100)) == {}


# -- constant and empty ----------------------------------------------------------------------------


def test_a_constant_column_ignores_empty_cells() -> None:
    found = _check({"unit": ["kg"] * 8 + [None, "  "]}, _labels(10))
    assert found["unit"].kind == "constant" and found["unit"].share == 1.0
    assert found["unit"].message == (
        "column 'unit' holds the single value 'kg' in all 8 non-empty training rows: "
        "nothing to learn from it; set `type: ignore`"
    )


def test_an_all_empty_column() -> None:
    found = _check({"notes": [None, "", " ", np.nan]}, ["a", "b", "a", "b"])
    assert found["notes"].kind == "empty"
    assert found["notes"].message == (
        "column 'notes' is empty in all 4 training rows: nothing to learn from it; set `type: ignore`"
    )


# -- the seams -------------------------------------------------------------------------------------


def test_rows_are_matched_by_position_whatever_the_index() -> None:
    labels = _labels(100)
    frame = pd.DataFrame({"caption": [f"a {y}" for y in labels], "label": labels}, index=[7] * 100)
    found = find_column_problems(frame, {"caption": "text", "absent": "text", "label": "text"}, "label",
                                 "multiclass")
    assert [(f.column, f.kind) for f in found] == [("caption", "leak")]  # the label itself is skipped


def test_config_problems_skip_ignored_columns() -> None:
    labels = _labels(50)
    frame = pd.DataFrame({"a": "x", "b": "y", "n": np.arange(50.0), "label": labels})
    config = Config.from_dict({
        "label": {"column": "label", "task": "multiclass"},
        "columns": {"a": {"type": "categorical"}, "b": {"type": "ignore"}, "n": {"type": "numeric"}},
    })
    found = find_config_problems(config, frame)
    assert [(f.column, f.kind) for f in found] == [("a", "constant"), ("n", "id")]


def test_print_and_write_findings(tmp_path: Path) -> None:
    findings = [Finding("c", "leak", 0.995, "column 'c' predicts the label in 99.5% of training rows",
                        "a leak?")]
    console = Console(record=True, width=300)
    print_findings(findings, console)
    assert console.export_text().strip() == (
        "warning: column 'c' predicts the label in 99.5% of training rows: a leak? set `type: ignore`"
    )
    write_findings(findings, tmp_path / "w.csv")
    with (tmp_path / "w.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["column", "kind", "share", "message"], ["c", "leak", "0.9950", findings[0].message],
        ]


def test_100k_rows_are_checked_fast() -> None:
    n = 100_000
    labels = _labels(n)
    frame = pd.DataFrame({
        "caption": [f"a photo of a {y}" for y in labels], "id": np.arange(n),
        "colour": np.random.default_rng(6).choice(["r", "g", "b"], n),
        "weight": np.random.default_rng(7).normal(size=n),
        "label": labels,
    })
    types = {"caption": "text", "id": "numeric", "colour": "categorical", "weight": "numeric"}
    start = time.perf_counter()
    found = find_column_problems(frame, types, "label", "multiclass")
    elapsed = time.perf_counter() - start
    assert [(f.column, f.kind) for f in found] == [("caption", "leak"), ("id", "id")]
    assert elapsed < 2.0  # about 0.1 s on a busy 2-core CPU; a per-row Python loop takes several seconds
