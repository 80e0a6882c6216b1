"""Table-level checks and the bad-row policy (fail with a clear error, or skip and report)."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pandas as pd

from omnifuse.config.sections import Config
from omnifuse.data.dataset import BadRow
from omnifuse.errors import BadRowError, DataError

BAD_ROWS_FILE = "bad_rows.csv"


def check_columns(frame: pd.DataFrame, config: Config, source: str, need_label: bool) -> None:
    """Raises DataError naming every configured column the table lacks."""
    wanted = list(config.table_columns())
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
    """Appends the bad rows of ``table`` to a CSV (header written once). Several processes may append at
    once (DDP ranks and their loader workers while streaming): each holds an exclusive lock on the file
    while it checks for the header and writes its rows in one piece."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    for b in bad:
        writer.writerow([table, b.row, b.column, b.value, b.reason, b.fix])
    with path.open("a", newline="", encoding="utf-8") as handle, _locked(handle):
        if handle.tell() == 0:  # opened for appending: the position is the file's size
            csv.writer(handle).writerow(["table", "row", "column", "value", "reason", "fix"])
        handle.write(text.getvalue())


@contextmanager
def _locked(handle: TextIO) -> Iterator[None]:
    """An exclusive advisory lock on an open file (POSIX ``flock``; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer at a time is the caller's business
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        handle.seek(0, io.SEEK_END)  # another process may have appended while this one waited
        yield
        handle.flush()
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
