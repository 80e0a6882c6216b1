"""Reading tables (CSV, TSV, Parquet, JSONL, DataFrame) and resolving the file paths in their cells."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.errors import BadValueError, DataError
from omnifuse.generation.conversations import flatten_conversations, is_conversation_table

_CSV_EXTENSIONS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_PARQUET_EXTENSIONS = (".parquet", ".pq")
_JSONL_EXTENSIONS = (".jsonl", ".ndjson")
SUPPORTED_EXTENSIONS = (*_CSV_EXTENSIONS, *_PARQUET_EXTENSIONS, *_JSONL_EXTENSIONS)
DATAFRAME_SOURCE = "<DataFrame>"


@dataclass(frozen=True)
class Table:
    """A table and the folder its relative file paths are resolved against."""

    frame: pd.DataFrame
    base_dir: Path  # the table file's folder, or the working directory for an in-memory DataFrame
    source: str  # the path as given, or "<DataFrame>"


def read_table(source: str | Path | pd.DataFrame, base_dir: Path | None = None) -> Table:
    """Reads a table by file extension, or wraps a DataFrame as it is.

    CSV cells that are empty become NaN; the texts "NA", "None", "null" stay text.

    Args:
        source: a .csv / .tsv / .tab / .parquet / .pq / .jsonl / .ndjson file, or a DataFrame.
        base_dir: the folder relative file paths in cells are resolved against; defaults to the
            table file's folder (the working directory for a DataFrame).

    Returns:
        The Table.

    Raises:
        DataError: the file is missing, has an unknown extension, cannot be read or decoded,
            has duplicate column names or no rows.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
        folder = (base_dir or Path.cwd()).resolve()
        name = DATAFRAME_SOURCE
    else:
        path = Path(source).expanduser()
        frame = _read_file(path)
        folder = (base_dir or path.parent).resolve()
        name = str(source)
    _check_frame(frame, name)
    return Table(frame=frame, base_dir=folder, source=name)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(
            f"table file {str(path)!r} does not exist (looked for {path.resolve()}); "
            f"check the path (relative paths start from the working directory {Path.cwd()})"
        )
    if path.is_dir():
        raise DataError(
            f"table {str(path)!r} is a folder, not a file; give the path of a table file inside it"
        )
    suffix = path.suffix.lower()
    reader: Callable[[Path], pd.DataFrame]
    if suffix in _CSV_EXTENSIONS:
        reader = _read_delimited
    elif suffix in _PARQUET_EXTENSIONS:
        reader = _read_parquet
    elif suffix in _JSONL_EXTENSIONS:
        reader = _read_jsonl
    else:
        raise DataError(
            f"table {str(path)!r}: unknown file extension {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)} (rename the file or convert it)"
        )
    return reader(path)


def _decode_utf8(path: Path) -> str:
    """The file's text; a BOM is dropped. Raises DataError naming the line of the first bad byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"table {str(path)!r} line {line}: byte 0x{raw[exc.start]:02x} is not valid UTF-8; "
            "re-save the file as UTF-8 (e.g. in a spreadsheet: Save As > CSV UTF-8)"
        ) from None


def _read_delimited(path: Path) -> pd.DataFrame:
    sep = _CSV_EXTENSIONS[path.suffix.lower()]
    text = _decode_utf8(path)
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), None)
    except csv.Error as exc:  # e.g. a bare carriage return inside an unquoted header field
        raise DataError(
            f"table {str(path)!r} has an unreadable header row ({exc}); "
            "save it again with plain line endings (\\n or \\r\\n) and quoted fields"
        ) from None
    if not header:
        raise DataError(f"table {str(path)!r} is empty (no header row); add a header and at least one row")
    _check_duplicates(header, str(path))
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(
            f"table {str(path)!r} is not a valid {path.suffix.lower()[1:].upper()} file: {str(exc).strip()}; "
            "fix the quoting or the number of fields on that line"
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(
            f"table {str(path)!r} is not a readable Parquet file ({type(exc).__name__}: {exc}); "
            "re-export it, e.g. with pandas DataFrame.to_parquet"
        ) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(_decode_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"table {str(path)!r} line {number}: not valid JSON ({exc.msg}); "
                "each line must hold one JSON object"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"table {str(path)!r} line {number}: expected a JSON object {{...}}, got "
                f"{type(record).__name__}; each line must hold one object mapping column to value"
            )
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if is_conversation_table(frame):  # LLaVA conversations: one row per answer
        return flatten_conversations(frame, str(path))
    return frame


def _check_duplicates(names: list[Any], source: str) -> None:
    dupes = sorted(name for name, count in Counter(str(n) for n in names).items() if count > 1)
    if dupes:
        raise DataError(
            f"table {source!r} has duplicate column names: {', '.join(repr(d) for d in dupes)}; "
            "rename them so that every column name is unique"
        )


def _check_frame(frame: pd.DataFrame, source: str) -> None:
    _check_duplicates(list(frame.columns), source)
    if len(frame) == 0:
        raise DataError(f"table {source!r} has no rows; it needs a header and at least one data row")


def resolve_path(value: str, base_dir: Path) -> Path:
    """The path in a cell: ``~`` expanded, absolute paths kept, relative ones joined to ``base_dir``.

    Where the file may be is checked separately, by ``check_inside``.
    """
    path = Path(value)
    try:
        path = path.expanduser()
    except RuntimeError:
        pass  # "~user" with no such user: keep the text as a relative path (it will not be found)
    return path if path.is_absolute() else base_dir / path


_O_PATH = getattr(os, "O_PATH", 0)  # Linux: open a path without reading it
_KERNEL_PATHS = bool(_O_PATH) and os.path.isdir("/proc/self/fd")


def real_path(path: Path) -> Path:
    """``path.resolve()`` (``..`` and symlinks followed), asked of the kernel when the path exists.

    ``Path.resolve`` checks every component with its own system call in Python (~20 us for a deep
    path, twice per file cell); on Linux, opening the path with ``O_PATH`` and reading back its
    ``/proc/self/fd`` link gives the same answer in three system calls. Anything else (no such file,
    another OS) falls back to ``Path.resolve``.
    """
    if _KERNEL_PATHS:
        try:
            handle = os.open(path, _O_PATH)
        except OSError:
            return path.resolve()
        try:
            return Path(os.readlink(f"/proc/self/fd/{handle}"))
        except OSError:
            return path.resolve()
        finally:
            os.close(handle)
    return path.resolve()


def check_inside(path: Path, base_dir: Path, allow_outside: bool, shown: str | None = None) -> None:
    """The path policy: a file named in a table must resolve (``..`` and symlinks followed) inside
    the table's folder, unless ``allow_outside`` (``data.allow_outside_paths``) is true.

    Absolute paths follow the same rule: allowed when they resolve inside ``base_dir``.

    Args:
        path: the file, as ``resolve_path`` returned it.
        base_dir: the table's folder (or the ``base_dir`` given).
        allow_outside: skip the check.
        shown: the cell as written, for the message (default: ``path``).

    Raises:
        BadValueError: the file resolves outside ``base_dir``; names both absolute paths and the fix.
    """
    if allow_outside:
        return
    real, base = real_path(path), real_path(base_dir)
    if real.is_relative_to(base):
        return
    name = str(path) if shown is None else shown
    raise BadValueError(
        f"file {name!r} resolves to {real}, outside the table's folder {base}",
        "move it inside the folder, or set data.allow_outside_paths: true",
    )


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA, NaT and strings that are empty or only whitespace."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    if pd.api.types.is_scalar(value):
        return bool(pd.isna(value))
    return False
