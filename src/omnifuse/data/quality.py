"""Table-level checks and the bad-row policy (fail with a clear error, or skip and report)."""

from __future__ import annotations

import csv
import difflib
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from omnifuse.config.sections import Config
from omnifuse.data.dataset import BadRow
from omnifuse.errors import BadRowError, DataError

BAD_ROWS_FILE = "bad_rows.csv"
BAD_ROW_PARTS = "checkpoints/bad_rows"  # under the output folder: the streamed batches' bad rows, per batch
HEADER = ["table", "row", "column", "value", "reason", "fix"]


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
    """Appends the bad rows of ``table`` to a CSV (header written once). One process writes it: rank 0
    under DDP; rows found while streaming go to per-batch parts first (``write_bad_row_part``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if handle.tell() == 0:  # opened for appending: the position is the file's size
            writer.writerow(HEADER)
        writer.writerows(_records(bad, table))


def write_bad_row_part(bad: Sequence[BadRow], folder: Path, table: str) -> None:
    """The bad rows of one streamed batch (sorted by row) as a file of their own, named by their first row
    and replaced whole (written, then renamed): the DDP ranks and loader workers that read the batches
    never share a file, and a batch read again (a first epoch redone on resume) is listed once."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rows-{bad[0].row:012d}.csv"
    scratch = folder / f".{path.name}.{os.getpid()}"
    with scratch.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(_records(bad, table))
    os.replace(scratch, path)


def merge_bad_row_parts(path: Path, folder: Path, table: str) -> int:
    """Rewrites the bad-rows CSV ``path`` as its rows of other tables followed by the rows of ``table``
    from the parts in ``folder``, in row order and each once; returns how many rows of ``table`` it
    lists. Run by one process (rank 0) once the parts are written; running it again changes nothing."""
    kept = [r for r in _read_records(path) if r[0] != table]
    found: list[list[str]] = []
    for part in sorted(folder.glob("rows-*.csv")) if folder.is_dir() else []:
        found += _read_records(part, header=False)
    streamed = list(dict.fromkeys(tuple(r) for r in found))  # parts cut at other batch bounds: once each
    if not kept and not streamed:
        return 0
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    with scratch.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([HEADER, *kept, *streamed])
    os.replace(scratch, path)
    return len(streamed)


def _records(bad: Sequence[BadRow], table: str) -> list[list[object]]:
    return [[table, b.row, b.column, b.value, b.reason, b.fix] for b in bad]


def _read_records(path: Path, header: bool = True) -> list[list[str]]:
    """The rows of a bad-rows CSV (without its header line when ``header``); [] when it is absent."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    return rows[1:] if header and rows else rows
