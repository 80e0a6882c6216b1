"""Unit tests of table-level checks and the bad-row policy."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from omnifuse.config.sections import Config
from omnifuse.data.dataset import BadRow
from omnifuse.data.quality import (
    BAD_ROWS_FILE,
    HEADER,
    apply_bad_row_policy,
    check_columns,
    merge_bad_row_parts,
    write_bad_row_part,
    write_bad_rows,
)
from omnifuse.errors import BadRowError, DataError


def _config() -> Config:
    return Config.from_dict(
        {
            "label": {"column": "label", "task": "binary"},
            "columns": {
                "review": {"type": "text"},
                "price": {"type": "numeric"},
                "skip_me": {"type": "ignore"},
            },
        }
    )


def test_check_columns_passes_when_all_present() -> None:
    frame = pd.DataFrame(columns=["review", "price", "label", "extra"])
    check_columns(frame, _config(), "train.csv", need_label=True)


def test_ignored_columns_need_not_exist() -> None:
    frame = pd.DataFrame(columns=["review", "price"])
    check_columns(frame, _config(), "rows", need_label=False)  # no label needed to predict


def test_check_columns_names_missing_column_with_did_you_mean() -> None:
    frame = pd.DataFrame(columns=["reveiw", "price", "label"])
    with pytest.raises(
        DataError,
        match=r"^table train\.csv has no column 'review' \(did you mean 'reveiw'\?\); "
        r"its columns are reveiw, price, label\. "
        r"Fix the table or the config's columns / label\.column$",
    ):
        check_columns(frame, _config(), "train.csv", need_label=True)


def test_check_columns_lists_every_missing_column_and_label() -> None:
    frame = pd.DataFrame(columns=["zzz"])
    with pytest.raises(
        DataError, match=r"has no column 'review', 'price', 'label'; its columns are zzz"
    ) as info:
        check_columns(frame, _config(), "t.csv", need_label=True)
    assert "did you mean" not in str(info.value)


def test_missing_label_only_matters_when_needed() -> None:
    frame = pd.DataFrame(columns=["review", "price", "labels"])
    check_columns(frame, _config(), "rows", need_label=False)
    with pytest.raises(DataError, match=r"no column 'label' \(did you mean 'labels'\?\)"):
        check_columns(frame, _config(), "valid.csv", need_label=True)


BAD = [
    BadRow(3, "photo", "a.png", "file 'a.png' does not exist", "fix the path"),
    BadRow(9, "review", "", "the cell is empty", "fill it"),
    BadRow(12, "label", "x", "label 'x' is unknown", "drop it"),
]


def test_no_bad_rows_is_a_no_op(tmp_path: Path) -> None:
    apply_bad_row_policy([], "error", tmp_path, "t.csv")
    apply_bad_row_policy([], "skip", tmp_path, "t.csv")
    assert not (tmp_path / BAD_ROWS_FILE).exists()


def test_error_policy_names_row_column_fix_and_count() -> None:
    expected = (
        r"^column 'photo' row 3: file 'a\.png' does not exist \(2 more bad row\(s\) in train\.csv\); "
        r"fix the path; or set data\.on_bad_row: skip to skip bad rows and list them in bad_rows\.csv$"
    )
    with pytest.raises(BadRowError, match=expected) as info:
        apply_bad_row_policy(BAD, "error", None, "train.csv")
    assert (info.value.row, info.value.column) == (3, "photo")


def test_error_policy_with_one_bad_row_has_no_count() -> None:
    with pytest.raises(
        BadRowError, match=r"^column 'review' row 9: the cell is empty; fill it; or set"
    ) as info:
        apply_bad_row_policy(BAD[1:2], "error", None, "train.csv")
    assert "more bad row" not in str(info.value)


def test_skip_policy_writes_csv_header_once_and_appends(tmp_path: Path) -> None:
    out = tmp_path / "model"
    apply_bad_row_policy(BAD[:2], "skip", out, "train.csv")
    apply_bad_row_policy(BAD[2:], "skip", out, "valid.csv")
    with (out / BAD_ROWS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["table", "row", "column", "value", "reason", "fix"],
        ["train.csv", "3", "photo", "a.png", "file 'a.png' does not exist", "fix the path"],
        ["train.csv", "9", "review", "", "the cell is empty", "fill it"],
        ["valid.csv", "12", "label", "x", "label 'x' is unknown", "drop it"],
    ]


def test_skip_policy_without_out_dir_writes_nothing(tmp_path: Path) -> None:
    apply_bad_row_policy(BAD, "skip", None, "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_write_bad_rows_quotes_commas_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "bad.csv"
    write_bad_rows([BadRow(0, "t", "a, b\nc", "r", "f")], path, "t")
    frame = pd.read_csv(path)
    assert frame.loc[0, "value"] == "a, b\nc"
    assert list(frame.columns) == ["table", "row", "column", "value", "reason", "fix"]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _bad(*rows: int) -> list[BadRow]:
    return [BadRow(r, "score", f"v{r}, \"quoted\"\nline", "not a number", "fix it") for r in rows]


def test_streamed_parts_merge_after_the_other_tables_in_row_order_each_once(tmp_path: Path) -> None:
    parts, path = tmp_path / "checkpoints" / "bad_rows", tmp_path / BAD_ROWS_FILE
    write_bad_rows(_bad(5), path, "t.parquet (first 30 rows: validation)")  # written while preparing
    for rows in ((150, 151), (40,), (60,), (150, 151)):  # by rank 1, rank 0, rank 1, then read again
        write_bad_row_part(_bad(*rows), parts, "t.parquet")
    assert merge_bad_row_parts(path, parts, "t.parquet") == 4
    expected = [HEADER, ["t.parquet (first 30 rows: validation)", "5", "score", 'v5, "quoted"\nline',
                         "not a number", "fix it"]]
    expected += [["t.parquet", str(r), "score", f'v{r}, "quoted"\nline', "not a number", "fix it"]
                 for r in (40, 60, 150, 151)]
    assert _rows(path) == expected
    assert merge_bad_row_parts(path, parts, "t.parquet") == 4 and _rows(path) == expected  # idempotent
    assert sorted(p.name for p in parts.iterdir()) == [f"rows-{r:012d}.csv" for r in (40, 60, 150)]  # no .tmp


def test_merging_nothing_writes_nothing(tmp_path: Path) -> None:
    assert merge_bad_row_parts(tmp_path / BAD_ROWS_FILE, tmp_path / "none", "t.parquet") == 0
    assert not (tmp_path / BAD_ROWS_FILE).exists()
