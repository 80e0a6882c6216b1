"""Leak and identifier checks: input columns that let a model cheat, or give it nothing to learn.

Run on the training rows by ``omnifuse init-config`` (which writes such a column as ``type: ignore``),
``omnifuse validate`` (warnings) and ``omnifuse train`` (one console line each, then it trains anyway).
Every statistic is computed with pandas / numpy over whole columns: tens of milliseconds per column of
100k rows.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from omnifuse.data.schema import ID_NAME, MEDIA_EXTENSIONS, MIN_ID_ROWS

if TYPE_CHECKING:
    from rich.console import Console

    from omnifuse.config.sections import Config

Kind = Literal["leak", "id", "constant", "empty"]

LEAK_SHARE = 0.99  # the column's value -> majority label map is right in at least this share of rows
LEAK_COVERAGE = 0.9  # ... counted over values seen at least twice, which must cover this share of rows
LEAK_GAIN = 0.1  # ... and it makes at most this share of the errors of always guessing the commonest label
MIN_LEAK_ROWS = 10  # fewer rows with both the column and the label: too few to tell
LEAK_CORRELATION = 0.999  # regression: |Pearson r| of a numeric column with the label
ID_SHARE = 0.95  # a row id has a distinct value in more than this share of its non-empty rows
MAX_CODE_LENGTH = 64  # string ids are codes no longer than this (a UUID has 36 characters)
DENSE_RANGE = 2.0  # integer ids: max - min + 1 <= this x rows (else sorted, or named like an id)
WARNINGS_FILE = "column_warnings.csv"  # written by ``omnifuse validate --out``
IGNORE_FIX = "set `type: ignore`"
_MEDIA_TYPES = ("image", "audio", "video")
_MEDIA_SUFFIX = tuple(ext for exts in MEDIA_EXTENSIONS.values() for ext in exts)
_INTEGER_TEXT = r"[+-]?[0-9]+"
_SPACE_OR_SLASH = r"[ \t\n\r\f\v/]"  # written out: pyarrow's RE2 runs it without a Python fallback


@dataclass(frozen=True)
class Finding:
    """One input column that a model would copy (a leak) or learn nothing from (id, constant, empty)."""

    column: str
    kind: Kind
    share: float  # the share of rows that supports it (label match, distinct, single value or empty)
    evidence: str  # the statistic, e.g. "column 'caption' predicts the label exactly in 100% of ..."
    hint: str  # what it suggests, ending in '?' or ';', e.g. "a leak?"

    def says(self, fix: str = IGNORE_FIX) -> str:
        """The one-line message with ``fix`` as its remedy."""
        return f"{self.evidence}: {self.hint} {fix}"

    @property
    def message(self) -> str:
        """The one-line message, e.g. "column 'caption' predicts the label exactly in 100% of training
        rows: a leak? set `type: ignore`"."""
        return self.says()


def find_column_problems(
    frame: pd.DataFrame, columns: Mapping[str, str], label: str | None, task: str
) -> list[Finding]:
    """Checks each input column of ``frame`` for a leak, a row id, a single value or no values.

    Args:
        frame: the training rows.
        columns: input column name -> its type (``text``, ``image``, ``numeric``, ...; media path columns
            are never row ids); names not in ``frame``, and the label, are skipped.
        label: the label column, or None (contrastive without a label): no leak check.
        task: the label's task; ``regression`` checks correlation, ``contrastive`` has no leak check, the
            others check whether each value of the column goes with one label.

    Returns:
        At most one finding per column, in the order of ``columns``.
    """
    frame = frame.reset_index(drop=True)  # cells are matched by position, whatever the index holds
    target = None
    if label and label in frame.columns and task != "contrastive":
        target = _target(frame[label], task)
    findings = []
    for name, kind in columns.items():
        if name not in frame.columns or name == label:
            continue
        finding = _column_finding(name, frame[name], kind, target, task)
        if finding is not None:
            findings.append(finding)
    return findings


def find_config_problems(config: Config, frame: pd.DataFrame) -> list[Finding]:
    """``find_column_problems`` for the configured input columns (``type: ignore`` ones left out)."""
    return find_column_problems(frame, config.table_types(), config.label.column or None, config.label.task)


def _target(series: pd.Series, task: str) -> np.ndarray:
    """The label per row: (N,) float numbers for regression (NaN when empty), else (N,) int codes
    (-1 when empty)."""
    values = _present(series)
    if task == "regression":
        numbers = np.full(len(series), np.nan)
        numbers[values.index] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        return numbers
    codes = np.full(len(series), -1, dtype=np.int64)
    codes[values.index] = pd.factorize(values)[0]
    return codes


def _column_finding(
    name: str, series: pd.Series, kind: str, target: np.ndarray | None, task: str
) -> Finding | None:
    values = _present(series)
    if values.empty:
        return Finding(name, "empty", 1.0, f"column {name!r} is empty in all {len(series)} training rows",
                       "nothing to learn from it;")
    distinct = values.nunique()
    if distinct == 1:
        value = _shown(values.iloc[0])
        return Finding(name, "constant", 1.0, f"column {name!r} holds the single value {value} in all "
                       f"{len(values)} non-empty training rows", "nothing to learn from it;")
    found = _id_finding(name, values, distinct, kind)
    if found is None and target is not None:
        found = _correlation_leak(name, values, target) if task == "regression" else (
            _label_leak(name, values, target))
    return found


def _present(series: pd.Series) -> pd.Series:
    """The non-empty cells: numbers as they are (NaN dropped), anything else as stripped strings."""
    kept = series[series.notna()]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return kept
    text = kept.astype(str).str.strip()
    return text[text != ""]


# -- row identifiers -------------------------------------------------------------------------------


def _id_finding(name: str, values: pd.Series, distinct: int, kind: str) -> Finding | None:
    rows = len(values)
    share = distinct / rows
    if rows < MIN_ID_ROWS or share <= ID_SHARE or kind in _MEDIA_TYPES or not _looks_like_ids(name, values):
        return None
    return Finding(name, "id", share, f"column {name!r} has {distinct} distinct values in {rows} non-empty "
                   f"training rows ({_percent(share)})", "a row id?")


def _looks_like_ids(name: str, values: pd.Series) -> bool:
    """Integers in a dense or sorted range (or named like an id), or short codes without spaces."""
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if not np.isfinite(numbers).all() or not (numbers == np.round(numbers)).all():
            return False
        dense = numbers.max() - numbers.min() + 1 <= DENSE_RANGE * len(numbers)
        steps = np.diff(numbers)
        ordered = bool((steps > 0).all() or (steps < 0).all())
        return dense or ordered or bool(ID_NAME.search(name))  # counts such as incomes stay numbers
    text = values.astype(str)
    if text.str.fullmatch(_INTEGER_TEXT).all():
        return True
    lower = text.str.lower()
    if text.str.contains(_SPACE_OR_SLASH).any() or text.str.contains("\\", regex=False).any() or (
            lower.str.endswith(_MEDIA_SUFFIX).any()):
        return False  # free text and file paths are naturally unique
    if text.str.len().max() > MAX_CODE_LENGTH:
        return False
    # Codes carry digits (A-0017, 3f2a...); distinct plain words (a vocabulary) are not ids.
    return bool(text.str.contains("[0-9]").mean() >= 0.5 or ID_NAME.search(name))


# -- leaks -----------------------------------------------------------------------------------------


def _label_leak(name: str, values: pd.Series, target: np.ndarray) -> Finding | None:
    """A leak when the majority label of each value is right in >= LEAK_SHARE of the rows."""
    y = target[values.index]  # (N,) label codes of the rows where the column has a value
    keep = y >= 0
    rows = int(keep.sum())
    if rows < MIN_LEAK_ROWS:
        return None
    x = pd.factorize(values[keep])[0].astype(np.int64)  # (N,) value codes
    y = y[keep]
    per_label = np.bincount(y)  # (L,)
    if (per_label > 0).sum() < 2:
        return None
    labels = len(per_label)
    pairs, counts = np.unique(x * labels + y, return_counts=True)
    top = np.zeros(x.max() + 1, dtype=np.int64)  # (K,) rows of each value's commonest label
    np.maximum.at(top, pairs // labels, counts)
    per_value = np.bincount(x)  # (K,)
    repeated = per_value >= 2
    covered = int(per_value[repeated].sum())
    if covered < LEAK_COVERAGE * rows:
        return None  # mostly one row per value: each goes with one label trivially
    purity = top[repeated].sum() / covered
    baseline = per_label.max() / rows  # always guessing the commonest label
    if purity < LEAK_SHARE or 1 - purity > LEAK_GAIN * (1 - baseline):
        return None
    share = top.sum() / rows
    exactly = "exactly " if top.sum() == rows else ""
    return Finding(name, "leak", float(share), f"column {name!r} predicts the label {exactly}in "
                   f"{_percent(share)} of training rows", "a leak?")


def _correlation_leak(name: str, values: pd.Series, target: np.ndarray) -> Finding | None:
    """A regression leak: a numeric column with |Pearson r| >= LEAK_CORRELATION to the label."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)  # (N,)
    y = target[values.index]  # (N,)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < MIN_LEAK_ROWS or x.std() == 0 or y.std() == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    if not abs(r) >= LEAK_CORRELATION:
        return None
    return Finding(name, "leak", abs(r), f"column {name!r} has correlation {r:+.4f} with the label on "
                   f"{len(x)} training rows", "a leak?")


def _percent(share: float) -> str:
    """A share as a percentage that says 100% only when it is exactly 1."""
    if share >= 1:
        return "100%"
    return f"{min(np.floor(share * 1000) / 10, 99.9):.1f}%"


def _shown(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- reporting -------------------------------------------------------------------------------------


def print_findings(findings: list[Finding], console: Console) -> None:
    """One yellow ``warning:`` line per finding."""
    for finding in findings:
        console.print("[yellow]warning:[/yellow] ", end="")
        console.print(finding.message, markup=False, highlight=False, soft_wrap=True)


def write_findings(findings: list[Finding], path: Path) -> None:
    """(Re)writes the findings as a CSV: column, kind, share, message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["column", "kind", "share", "message"])
        for f in findings:
            writer.writerow([f.column, f.kind, f"{f.share:.4f}", f.message])
