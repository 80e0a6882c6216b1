"""Shared steps of the dataset builders: build markers, atomic folder swap, splits, progress bars."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from omnifuse.errors import OptionError

MARKER = "BUILD.json"
SPLITS = ("train", "valid", "test")


def is_built(out_dir: Path, params: dict[str, Any], splits: tuple[str, ...] = SPLITS) -> bool:
    """Tell whether ``out_dir`` already holds a finished build (``splits``' CSVs) made with ``params``."""
    marker = out_dir / MARKER
    if not marker.is_file() or not all((out_dir / f"{s}.csv").is_file() for s in splits):
        return False
    try:
        return bool(json.loads(marker.read_text()) == params)
    except json.JSONDecodeError:
        return False


def build_atomically(out_dir: Path, params: dict[str, Any], fill: Callable[[Path], None],
                     splits: tuple[str, ...] = SPLITS) -> Path:
    """Build a dataset folder in a temporary sibling, then rename it to ``out_dir``.

    A half-built folder is never left at ``out_dir``: ``fill`` writes into the temporary folder, the
    ``BUILD.json`` marker is written last, and only then the folder takes the final name.
    When another process finished the same build while this one ran (two trainings started at once on a
    fresh folder), its folder is kept, never replaced under a reader.

    Args:
        out_dir: the final folder.
        params: the build parameters, stored in ``BUILD.json`` (compared by :func:`is_built`).
        fill: writes the dataset's files into the folder it is given.
        splits: the ``<split>.csv`` files a finished build holds.

    Returns:
        ``out_dir``, absolute.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and was not made by a builder.
    """
    out_dir = Path(out_dir).absolute()
    if is_built(out_dir, params, splits):
        return out_dir
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))  # one per build
    try:
        fill(tmp)
        (tmp / MARKER).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        if is_built(out_dir, params, splits):  # another process built the same meanwhile, and may be
            return out_dir  # reading it: keep its folder, drop ours
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to delete a folder that a builder did not make (it may hold the user's files)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"dataset folder '{out_dir}' is a file; remove it or choose another out_dir")
    if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise FileExistsError(
            f"dataset folder '{out_dir}' is not empty and has no {MARKER} marker, so it was not made by "
            "a dataset builder; empty or remove it, or choose another out_dir"
        )


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Order row indices round-robin over classes, each class shuffled, so every prefix is balanced.

    Taking consecutive slices of the result gives disjoint, class-balanced splits.
    """
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    longest = max(len(idx) for idx in per_class)
    order = [int(idx[k]) for k in range(longest) for idx in per_class if k < len(idx)]
    return np.asarray(order, dtype=np.int64)


def split_sizes(n_train: int, n_valid: int, n_test: int) -> dict[str, int]:
    """Check split sizes and return them by split name.

    Raises:
        OptionError: a size is negative or the train split is empty.
    """
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    for name, n in sizes.items():
        if n < 0:
            raise OptionError(f"n_{name}={n} is negative; pass a size >= 0")
    if n_train == 0:
        raise OptionError("n_train=0: a dataset needs training rows; pass n_train >= 1")
    return sizes


def write_csvs(out_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Write one CSV per split (``train.csv``, ``valid.csv``, ``test.csv``)."""
    for split, table in tables.items():
        table.to_csv(out_dir / f"{split}.csv", index=False)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress]:
    """A rich progress bar that draws nothing when ``enabled`` is false."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not enabled, transient=False) as progress:
        yield progress
