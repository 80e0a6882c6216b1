"""Property tests: schema inference gives every column a type, every label a task or a DataError.

Columns are drawn from arbitrary text (empty, blank, emoji, any non-surrogate unicode), numbers (ints,
floats with NaN and inf), booleans, None, file-name-like strings and mixtures of all of these.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from omnifuse.data.io import is_missing, read_table
from omnifuse.data.schema import infer_column_type, infer_label, infer_schema
from omnifuse.errors import DataError

COLUMN_TYPES = {"text", "image", "audio", "video", "numeric", "categorical", "ignore"}
TASKS = {"binary", "multiclass", "multilabel", "regression"}
EXTENSIONS = (".png", ".JPG", ".wav", ".flac", ".mp4", ".csv", "")

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
BLANK = st.sampled_from(["", " ", "\t", "\n ", "\u00a0", "\u3000"])
EMOJI = st.sampled_from(["😀", "🐈 cat", "👩‍👩‍👧", "é", "e\u0301", "日本語", "|", "a|b", "a | b |"])
INTS = st.integers(min_value=-(2**70), max_value=2**70)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
FILE_NAME = st.builds(
    lambda prefix, stem, ext: f"{prefix}{stem}{ext}",
    st.sampled_from(["", "./", "sub/", "/abs/", " "]),
    st.text(alphabet="abc_-. ", min_size=1, max_size=6),
    st.sampled_from(EXTENSIONS),
)
SCALAR = st.one_of(TEXT, BLANK, EMOJI, INTS, FLOATS, st.booleans(), st.none(), FILE_NAME)


def _lists(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(element, min_size=1, max_size=30)


# One kind per column (pandas picks a real dtype: int64, float64, bool, object) or any mixture.
COLUMN_VALUES = st.one_of(
    _lists(st.one_of(TEXT, BLANK, EMOJI)),
    _lists(INTS),
    _lists(st.integers(min_value=-5, max_value=40)),  # small codes, scales, row indices
    _lists(FLOATS),
    _lists(st.booleans()),
    _lists(st.one_of(st.booleans(), st.none())),
    _lists(st.one_of(FILE_NAME, st.none())),
    _lists(st.none()),
    _lists(SCALAR),
)
COLUMN_NAME = st.one_of(TEXT, st.sampled_from(["id", "user_id", "ID-x", "index", "key", "label", "uuid"]))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty folder for the media on-disk check (hypothesis re-runs the body, so not per test)."""
    return tmp_path_factory.mktemp("schema_base")


def _series(values: list[Any], name: str) -> pd.Series:
    return pd.Series(values, name=name)


@given(values=COLUMN_VALUES, name=COLUMN_NAME)
def test_infer_column_type_always_answers_with_a_known_type_and_a_reason(
    values: list[Any], name: str, base_dir: Path
) -> None:
    guess = infer_column_type(_series(values, name), base_dir)

    assert guess.type in COLUMN_TYPES
    assert isinstance(guess.reason, str) and guess.reason.strip()
    assert guess.reason.startswith(guess.type)  # the reason names the decision it explains
    assert guess.name == name
    if all(is_missing(v) for v in values):
        assert guess.type == "ignore"


# Path.expanduser raises RuntimeError for "~user" prefixes naming no user; a media-looking column of
# such cells crashed infer_column_type. Pinned so the property keeps checking it once it is fixed.
@given(users=_lists(st.text(alphabet="qxz", min_size=4, max_size=8)), ext=st.sampled_from(EXTENSIONS[:5]))
@example(users=["nobody"], ext=".png")
def test_infer_column_type_survives_tilde_user_paths(users: list[str], ext: str, base_dir: Path) -> None:
    guess = infer_column_type(_series([f"~{user}/a{ext}" for user in users], "photo"), base_dir)

    assert guess.type in {"image", "audio", "video"}
    assert guess.reason.strip()


@given(values=COLUMN_VALUES, name=COLUMN_NAME)
def test_infer_label_returns_a_task_or_raises_data_error(values: list[Any], name: str) -> None:
    series = _series(values, name)
    present = [v for v in values if not is_missing(v)]
    try:
        guess = infer_label(series)
    except DataError as err:
        assert name in str(err) or repr(name) in str(err)
        # Only the two documented reasons: nothing to learn from.
        assert not present or len(set(series[~series.map(is_missing)].tolist())) == 1
        return
    assert guess.task in TASKS
    assert guess.reason.startswith(guess.task) and guess.column == name
    if guess.task == "binary":
        assert len(set(series[~series.map(is_missing)].tolist())) == 2


@given(
    label=_lists(st.one_of(TEXT, INTS, FLOATS, st.none())),
    other=COLUMN_VALUES,
    name=TEXT.filter(lambda s: s != "y"),
)
def test_infer_schema_covers_every_other_column_or_raises_data_error(
    label: list[Any], other: list[Any], name: str, base_dir: Path
) -> None:
    rows = min(len(label), len(other))
    frame = pd.DataFrame({"y": label[:rows], name: other[:rows]})
    table = read_table(frame, base_dir=base_dir)
    try:
        task, columns = infer_schema(table, "y")
    except DataError:
        return
    assert task.task in TASKS
    assert [c.name for c in columns] == [name]
    assert columns[0].type in COLUMN_TYPES


@given(label=TEXT.filter(lambda s: s not in {"a", "b"}))
def test_infer_schema_names_a_missing_label_column(label: str, base_dir: Path) -> None:
    table = read_table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), base_dir=base_dir)

    with pytest.raises(DataError, match="is not in table"):
        infer_schema(table, label)


# "\r" inside a field is pinned separately below (a known crash); the rest must already hold.
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=200))
@example(text="")
@example(text='a,b\n"unclosed,1\n')
@example(text="a,a\n1,2\n")
def test_read_table_on_arbitrary_csv_text_returns_a_table_or_raises_data_error(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(text, encoding="utf-8")
    try:
        table = read_table(path)
    except DataError as err:
        assert "t.csv" in str(err)
        return
    assert len(table.frame) >= 1
    assert table.frame.columns.is_unique


@given(data=st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"\n")))
@example(data=b"a,b\n\xff\xfe,1\n")
def test_read_table_on_arbitrary_bytes_returns_a_table_or_raises_data_error(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "t.csv"
    path.write_bytes(data)
    try:
        read_table(path)
    except DataError as err:
        assert "t.csv" in str(err)


@given(value=SCALAR)
def test_is_missing_is_a_bool_for_any_scalar(value: Any) -> None:
    missing = is_missing(value)

    assert isinstance(missing, bool)
    if isinstance(value, float) and math.isnan(value):
        assert missing


@given(
    head=st.text(alphabet="ab", min_size=1, max_size=5), tail=st.text(alphabet="ab", min_size=1, max_size=5)
)
@example(head="a", tail="b")
def test_read_table_survives_a_carriage_return_inside_the_header(
    head: str, tail: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cr") / "t.csv"
    path.write_bytes(f"{head}\r{tail}\n1\n".encode())
    try:
        table = read_table(path)
    except DataError as exc:
        assert str(path) in str(exc)  # a clear error that names the file
    else:
        assert len(table.frame.columns) >= 1
