"""Reading tables: formats, base folder, missing values and the errors that name the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omnifuse.data.io import is_missing, read_table, resolve_path
from omnifuse.errors import DataError

FRAME = pd.DataFrame(
    {
        "text": ["a cat", "NA", "None", "a dog"],
        "count": [1, 2, 3, 4],
        "score": [0.5, 1.5, -2.0, 3.25],
        "photo": ["img/0.png", "img/1.png", "img/2.png", "img/3.png"],
    }
)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="," if suffix == ".csv" else "\t")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.jsonl"])
def test_every_format_reads_the_same_frame(tmp_path: Path, name: str) -> None:
    table = read_table(_write(FRAME, tmp_path / name))
    pd.testing.assert_frame_equal(table.frame, FRAME, check_dtype=False)
    assert table.frame["count"].dtype.kind == "i" and table.frame["score"].dtype.kind == "f"
    assert table.base_dir == tmp_path.resolve()
    assert table.source == str(tmp_path / name)


def test_tab_and_ndjson_and_pq_extensions(tmp_path: Path) -> None:
    (tmp_path / "t.tab").write_text("a\tb\n1\tx\n", encoding="utf-8")
    (tmp_path / "t.ndjson").write_text('{"a": 1, "b": "x"}\n\n', encoding="utf-8")
    pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(tmp_path / "t.pq")
    for name in ("t.tab", "t.ndjson", "t.pq"):
        assert read_table(tmp_path / name).frame.to_dict("list") == {"a": [1], "b": ["x"]}


def test_csv_keeps_na_text_and_empty_cells_are_nan(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\nNA,1\n,2\nNone,\nnull,4\n", encoding="utf-8")
    frame = read_table(path).frame
    assert frame["a"].tolist()[0] == "NA" and frame["a"].tolist()[2:] == ["None", "null"]
    assert pd.isna(frame["a"][1]) and pd.isna(frame["b"][2])


def test_csv_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffname,x\nJosé,1\n".encode())
    assert read_table(path).frame.to_dict("list") == {"name": ["José"], "x": [1]}


def test_dataframe_is_taken_as_is(tmp_path: Path) -> None:
    table = read_table(FRAME, base_dir=tmp_path)
    assert table.frame is FRAME and table.base_dir == tmp_path.resolve() and table.source == "<DataFrame>"
    assert read_table(FRAME).base_dir == Path.cwd().resolve()


def test_explicit_base_dir_overrides_the_folder(tmp_path: Path) -> None:
    path = _write(FRAME, tmp_path / "t.csv")
    assert read_table(path, base_dir=tmp_path / "media").base_dir == (tmp_path / "media").resolve()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"table file '.*nope\.csv' does not exist .*check the path"):
        read_table(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_table(tmp_path)


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown file extension '\.xlsx'; supported: \.csv, \.tsv.*\.jsonl"):
        read_table(path)


def test_duplicate_csv_columns_are_detected_before_pandas_renames_them(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"duplicate column names: 'a'; rename them"):
        read_table(path)


def test_duplicate_dataframe_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame([[1, 2]], columns=["x", "x"])
    with pytest.raises(DataError, match=r"'<DataFrame>' has duplicate column names: 'x'"):
        read_table(frame)


def test_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="has no rows; it needs a header and at least one data row"):
        read_table(path)
    (tmp_path / "e.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"is empty \(no header row\)"):
        read_table(tmp_path / "e.csv")


def test_non_utf8_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"name,x\nok,1\nJos\xe9,2\n")
    with pytest.raises(DataError, match=r"line 3: byte 0xe9 is not valid UTF-8; re-save the file as UTF-8"):
        read_table(path)


def test_malformed_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,2\n3,4,5,6\n"unclosed,7\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"is not a valid CSV file: .*fix the quoting"):
        read_table(path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match="is not a readable Parquet file .*re-export it"):
        read_table(path)


def test_bad_jsonl_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: not valid JSON .*one JSON object"):
        read_table(path)
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: expected a JSON object \{\.\.\.\}, got list"):
        read_table(path)


def test_resolve_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path("img/a.png", tmp_path) == tmp_path / "img" / "a.png"
    assert resolve_path(str(tmp_path / "x.png"), Path("/elsewhere")) == tmp_path / "x.png"
    assert resolve_path("~/a.wav", Path("/elsewhere")) == tmp_path / "home" / "a.wav"


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, True), (float("nan"), True), (np.float32("nan"), True), (pd.NA, True), (pd.NaT, True),
        ("", True), ("  \t", True), ("NA", False), ("x", False), (0, False), (0.0, False), (False, False),
        ([], False), (b"", False),
    ],
)
def test_is_missing(value: object, expected: bool) -> None:
    assert is_missing(value) is expected
