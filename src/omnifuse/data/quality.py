"""Table-level checks and the bad-row policy (fail with a clear error, or skip and report)."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from omnifuse.config import Config
from omnifuse.data.dataset import BadRow
from omnifuse.errors import BadRowError, DataError

BAD_ROWS_FILE = "bad_rows.csv"


def check_columns(frame: pd.DataFrame, config: Config, source: str, need_label: bool) -> None:
    """Raises DataError naming every configured column the table lacks."""
    wanted = [n for n, c in config.columns.items() if c.type != "ignore"]
    if need_label and config.label.column:  # contrastive configs may have no label column
        wanted.append(config.label.column)
    missing = [name for name in wanted if name not in frame.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise DataError(
        f"table {source} has no column {', '.join(hints)}; "
        f"its columns are {', '.join(map(str, frame.columns))}. "
        "Fix the table or the config's columns / label.column"
    )


def apply_bad_row_policy(bad: Sequence[BadRow], policy: str, out_dir: Path | None, table: str) -> None:
    """With policy 'error', raises for the first bad row; with 'skip', writes them to bad_rows.csv.

    Raises:
        BadRowError: policy is 'error' and there is at least one bad row.
    """
    if not bad:
        return
    if policy == "error":
        first = bad[0]
        more = f" ({len(bad) - 1} more bad row(s) in {table})" if len(bad) > 1 else ""
        fix = f"{first.fix}; or set data.on_bad_row: skip to skip bad rows and list them in {BAD_ROWS_FILE}"
        raise BadRowError(first.row, first.column, f"{first.reason}{more}", fix)
    if out_dir is not None:
        write_bad_rows(bad, out_dir / BAD_ROWS_FILE, table)


def write_bad_rows(bad: Sequence[BadRow], path: Path, table: str) -> None:
    """Appends the bad rows of ``table`` to a CSV (header written once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["table", "row", "column", "value", "reason", "fix"])
        for b in bad:
            writer.writerow([table, b.row, b.column, b.value, b.reason, b.fix])
