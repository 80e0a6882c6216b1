"""Schema inference: each column's modality and the label's task, each with the statistic that decided it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.data.io import Table, is_missing, resolve_path
from omnifuse.errors import DataError

MEDIA_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"),
    "audio": (".wav", ".flac", ".ogg", ".mp3"),  # what soundfile decodes
    "video": (".mp4", ".avi", ".mov", ".mkv", ".webm"),
}
MEDIA_SHARE = 0.9  # a column is media when at least this share of its values has a media extension
SAMPLE_SIZE = 20  # values whose files are checked on disk
MIN_ID_ROWS = 10  # below this many rows, all-distinct words may just be categories
MAX_CATEGORIES = 20  # strings with at most max(this, CATEGORY_SHARE * rows) distinct values are categories
CATEGORY_SHARE = 0.05
MAX_CATEGORY_LENGTH = 30  # ... and a mean length below this many characters
MAX_CODES = 10  # integers with at most this many unevenly spaced distinct values are codes
MAX_CLASSES = 20  # integer labels with at most this many distinct values are classes
MULTILABEL_SHARE = 0.1  # string labels with the delimiter in at least this share of rows are multilabel
# Column names that say "identifier": id, user_id, uuid, row.key, index_2, ...
ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key|index)$|^(id|uuid|guid|index)[_\s.-]", re.IGNORECASE)


@dataclass
class ColumnGuess:
    """The inferred type of one input column."""

    name: str
    type: str  # text, image, audio, video, numeric, categorical or ignore
    reason: str  # the statistic that decided it, for humans


@dataclass
class LabelGuess:
    """The inferred task of the label column."""

    column: str
    task: str  # binary, multiclass, multilabel or regression
    reason: str
    delimiter: str


def infer_schema(table: Table, label: str) -> tuple[LabelGuess, list[ColumnGuess]]:
    """The label's task and every other column's type, in table order.

    Raises:
        DataError: ``label`` is not a column of the table, or cannot be a label.
    """
    columns = [str(c) for c in table.frame.columns]
    if label not in columns:
        close = difflib.get_close_matches(label, columns, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"label column {label!r} is not in table {table.source!r}; {hint}"
            f"available columns: {', '.join(columns)}"
        )
    frame = table.frame.set_axis(columns, axis=1)
    guess = infer_label(frame[label])
    return guess, [infer_column_type(frame[c], table.base_dir) for c in columns if c != label]


# -- input columns -------------------------------------------------------------------------------


def infer_column_type(series: pd.Series, base_dir: Path) -> ColumnGuess:
    """Guesses a column's type: media by file extension, numeric by dtype, strings by cardinality.

    Args:
        series: the column; its name is the column name.
        base_dir: the folder relative file paths are resolved against (for the on-disk check).

    Returns:
        The guess with a reason naming the statistic that decided it.
    """
    name = str(series.name)
    values = [v for v in series.tolist() if not is_missing(v)]
    if not values:
        return ColumnGuess(name, "ignore", f"ignore: all {len(series)} values are missing")
    if pd.api.types.is_bool_dtype(series) or all(isinstance(v, bool) for v in values):
        return ColumnGuess(name, "categorical", f"categorical: boolean values ({len(set(values))} distinct)")
    if pd.api.types.is_numeric_dtype(series):
        return _numeric_guess(name, values)
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return ColumnGuess(
            name, "ignore",
            f"ignore: {series.dtype} values are not supported; convert them to numbers or text",
        )
    return _string_guess(name, [str(v) for v in values], base_dir)


def _numeric_guess(name: str, values: list[Any]) -> ColumnGuess:
    distinct = sorted(set(values))
    n, k = len(values), len(distinct)
    integral = all(float(v).is_integer() for v in distinct)
    if integral and ID_NAME.search(name) and k / n >= 0.5:
        return _id_guess(name, k, n)
    if integral and n >= 20 and k == n and distinct[-1] - distinct[0] == n - 1:
        return ColumnGuess(
            name, "ignore",
            f"ignore: the {n} values are the consecutive integers {distinct[0]}..{distinct[-1]} "
            "(a row index)",
        )
    steps = {b - a for a, b in zip(distinct, distinct[1:], strict=False)}
    if integral and 2 < k <= MAX_CODES and len(steps) > 1:
        return ColumnGuess(
            name, "categorical",
            f"categorical: {k} distinct integers, unevenly spaced ({_preview(distinct)}), "
            "so they look like codes; set type: numeric if their order matters",
        )
    if integral and k <= MAX_CODES:
        return ColumnGuess(
            name, "numeric", f"numeric: {k} distinct evenly spaced integers ({_preview(distinct)}), "
            "read as a scale; set type: categorical if they are codes"
        )
    return ColumnGuess(name, "numeric", (
        f"numeric: numbers with {k} distinct values in [{distinct[0]:.4g}, {distinct[-1]:.4g}]"
    ))


def _string_guess(name: str, values: list[str], base_dir: Path) -> ColumnGuess:
    media = _media_guess(name, values, base_dir)
    if media is not None:
        return media
    n, k = len(values), len(set(values))
    if ID_NAME.search(name) and k / n >= 0.5:
        return _id_guess(name, k, n)
    if n >= MIN_ID_ROWS and k == n and not any(any(ch.isspace() for ch in v) for v in values):
        return ColumnGuess(
            name, "ignore",
            f"ignore: all {n} values are distinct and contain no spaces, so they look like ids",
        )
    mean_length = sum(len(v) for v in values) / n
    limit = max(MAX_CATEGORIES, int(CATEGORY_SHARE * n))
    if k <= limit and mean_length < MAX_CATEGORY_LENGTH:
        return ColumnGuess(
            name, "categorical", f"categorical: {k} distinct values (<= {limit}) with mean length "
            f"{mean_length:.1f} chars (< {MAX_CATEGORY_LENGTH})"
        )
    too_many = f"{k} distinct values in {n} rows (categorical needs <= {limit})"
    too_long = f"mean length {mean_length:.1f} chars (categorical needs < {MAX_CATEGORY_LENGTH})"
    if k <= limit:
        return ColumnGuess(name, "text", f"text: {too_long}; {k} distinct values")
    if mean_length < MAX_CATEGORY_LENGTH:
        return ColumnGuess(name, "text", f"text: {too_many}; mean length {mean_length:.1f} chars")
    return ColumnGuess(name, "text", f"text: {too_many} and {too_long}")


def _id_guess(name: str, distinct: int, rows: int) -> ColumnGuess:
    return ColumnGuess(
        name, "ignore", f"ignore: the name looks like an id and {distinct}/{rows} values are distinct"
    )


def _media_guess(name: str, values: list[str], base_dir: Path) -> ColumnGuess | None:
    suffixes = [Path(v.strip()).suffix.lower() for v in values]
    shares = {kind: sum(s in exts for s in suffixes) / len(values) for kind, exts in MEDIA_EXTENSIONS.items()}
    kind = max(shares, key=lambda k: shares[k])
    if shares[kind] < MEDIA_SHARE:
        return None
    found = sorted({s for s in suffixes if s in MEDIA_EXTENSIONS[kind]})
    sample = sample_values(values)
    exist = sum(resolve_path(v.strip(), base_dir).is_file() for v in sample)
    reason = (
        f"{kind}: {shares[kind]:.0%} of values end in {'/'.join(found)} and "
        f"{exist}/{len(sample)} sampled files exist"
    )
    if exist < len(sample):
        reason += f" (relative paths are resolved against {base_dir}; fix the paths or the files)"
    return ColumnGuess(name, kind, reason)


def sample_values(values: list[str], size: int = SAMPLE_SIZE) -> list[str]:
    """Up to ``size`` values spread evenly over the list (deterministic)."""
    if len(values) <= size:
        return list(values)
    step = len(values) / size
    return [values[int(i * step)] for i in range(size)]


def _preview(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(_number(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _number(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


# -- label ---------------------------------------------------------------------------------------


def infer_label(series: pd.Series, delimiter: str = "|") -> LabelGuess:
    """Guesses the task from the label column.

    Two distinct values: binary; strings with ``delimiter`` in at least 10% of rows: multilabel;
    other strings and integers (also integral floats) with at most 20 distinct values: multiclass;
    other numbers: regression.

    Raises:
        DataError: the label has no values, or a single distinct value.
    """
    name = str(series.name)
    values = [v for v in series.tolist() if not is_missing(v)]
    if not values:
        raise DataError(f"label column {name!r} has no values; fill it in or pick another label column")
    distinct = set(values)
    if len(distinct) == 1:
        raise DataError(
            f"label column {name!r} has the single value {next(iter(distinct))!r} in every row; "
            "a model needs at least two classes (or varying numbers) to learn from"
        )
    n, k = len(values), len(distinct)

    def guess(task: str, reason: str) -> LabelGuess:
        return LabelGuess(name, task, f"{task}: {reason}", delimiter)

    if k == 2:
        return guess("binary", f"2 distinct values ({_preview(sorted(distinct, key=str))})")
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        integral = all(float(v).is_integer() for v in distinct)
        if integral and k <= MAX_CLASSES:
            shown = _preview(sorted(distinct))
            return guess("multiclass", f"{k} distinct integers (<= {MAX_CLASSES}): {shown}")
        what = "integers" if integral else "numbers"
        low, high = min(values), max(values)
        return guess("regression", f"{k} distinct {what} in {n} rows, range [{low:.4g}, {high:.4g}]")
    texts = [str(v) for v in values]
    share = sum(delimiter in t for t in texts) / n
    if share >= MULTILABEL_SHARE:
        labels = {part.strip() for t in texts for part in t.split(delimiter) if part.strip()}
        return guess(
            "multilabel", f"{share:.0%} of rows hold several labels separated by {delimiter!r} "
            f"({len(labels)} labels in all)"
        )
    return guess("multiclass", f"{k} distinct values: {_preview(sorted(distinct, key=str))}")
