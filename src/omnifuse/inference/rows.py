"""Rows handed to a predictor (a DataFrame, a list of dicts, one dict, or a table file) as row dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.config.sections import Config
from omnifuse.data.io import read_table
from omnifuse.data.quality import check_columns
from omnifuse.errors import DataError

Rows = pd.DataFrame | list[dict[str, Any]] | dict[str, Any]


def to_records(rows: Rows | str | Path, base_dir: Path | None) -> tuple[list[dict[str, Any]], Path]:
    """Row dicts and the folder relative file paths are resolved against (no DataFrame for dict input)."""
    if isinstance(rows, (str, Path)):
        table = read_table(rows)
        return _records(table.frame), base_dir or table.base_dir
    folder = (base_dir or Path.cwd()).resolve()
    if isinstance(rows, dict):
        return [rows], folder
    if isinstance(rows, list):
        return rows, folder
    return _records(rows), folder


def outside_paths_allowed(rows: Rows | str | Path, base_dir: Path | None) -> bool | None:
    """True for rows built in Python with no ``base_dir`` (no table folder: their paths are the
    caller's choice); None otherwise, i.e. the model's ``data.allow_outside_paths`` decides."""
    return True if base_dir is None and not isinstance(rows, (str, Path)) else None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def check_records(records: list[dict[str, Any]], config: Config) -> None:
    """Raises DataError naming an input column the rows lack (with a did-you-mean)."""
    if not records:
        raise DataError("no rows to predict; pass at least one row")
    wanted = list(config.table_columns())
    for position, record in enumerate(records):
        if any(name not in record for name in wanted):
            where = "" if len(records) == 1 else f" (row {position})"
            check_columns(pd.DataFrame(columns=list(record)), config, f"of rows to predict{where}", False)
