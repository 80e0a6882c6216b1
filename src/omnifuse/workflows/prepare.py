"""Preparing a run's data: read the tables, split off validation rows, fit the task and the preprocessors on
the training rows, and preprocess every split once (``api.prepare_data`` picks this or ``streaming``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader

from omnifuse.build import make_preprocessors, make_task_for
from omnifuse.config.sections import Config
from omnifuse.contrastive.init_from import pretrained_preprocessors
from omnifuse.data.collate import Example, collate
from omnifuse.data.dataset import (
    BadRow,
    ExampleDataset,
    attach_targets,
    fit_values,
    input_specs,
    make_examples,
)
from omnifuse.data.io import Table, is_missing, read_table
from omnifuse.data.leaks import find_config_problems, print_findings
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import BAD_ROWS_FILE, apply_bad_row_policy, check_columns
from omnifuse.errors import DataError
from omnifuse.tasks.base import Task
from omnifuse.training.distributed import is_rank_zero

TableLike = str | Path | pd.DataFrame
SPLIT_FILE = "split.json"


@dataclass
class RunContext:
    """Where a run writes and how it talks to the user."""

    out: Path
    console: Console
    progress: bool
    writes: bool = True  # False on DDP ranks other than 0: no files, no messages


@dataclass
class PreparedData:
    """Fitted task and preprocessors and the preprocessed rows of each split (train, valid[, test])."""

    task: Task
    preprocessors: dict[str, Preprocessor]
    examples: dict[str, list[Example]]
    train_stream: Any = None  # data.streaming: a ParquetStream of the training rows (no examples["train"])
    # data.streaming: merges the stream's bad rows into bad_rows.csv (rank 0, after fit): (number, file)
    merge_bad_rows: Callable[[], tuple[int, Path]] | None = None
    tables: dict[str, Table] = dataclasses.field(default_factory=dict)  # behind examples, for the baselines


def prepare_tables(cfg: Config, train: TableLike, valid: TableLike | None, test: TableLike | None,
                   ctx: RunContext, *, resume: bool = False,
                   base_dir: str | Path | None = None) -> PreparedData:
    """``api.prepare_data`` for tables held in memory: read, split, fit the task and the preprocessors
    on the training rows, preprocess every split once."""
    root = None if base_dir is None else Path(base_dir).resolve()
    train_table, valid_table = split_validation(cfg, read_table(train, root), valid, ctx.out, resume, root)
    if ctx.writes:  # a leak, a row id, a constant or empty input: said once, training goes on
        print_findings(find_config_problems(cfg, train_table.frame), ctx.console)
    task = fit_task(cfg, train_table)
    preprocessors = fit_preprocessors(cfg, train_table)
    sets = {"train": train_table, "valid": valid_table}
    if test is not None:
        sets["test"] = read_table(test, root)
        check_columns(sets["test"].frame, cfg, sets["test"].source, need_label=True)
    examples = {name: prepare_examples(cfg, t, preprocessors, task, ctx, name) for name, t in sets.items()}
    return PreparedData(task, preprocessors, examples, tables=sets)


def split_validation(
    cfg: Config, table: Table, valid: TableLike | None, out: Path, resume: bool, root: Path | None
) -> tuple[Table, Table]:
    """(training rows, validation rows): the ``valid`` table, else a seeded split of ``table`` saved to
    ``out/split.json`` (and read back on resume)."""
    check_columns(table.frame, cfg, table.source, need_label=True)
    if valid is not None:
        valid_table = read_table(valid, root)
        check_columns(valid_table.frame, cfg, valid_table.source, need_label=True)
        return table, valid_table
    split_path = out / SPLIT_FILE
    if resume and split_path.exists():
        valid_idx = json.loads(split_path.read_text())["valid_rows"]
    else:
        valid_idx = carve_validation(cfg, table.frame)  # seeded: the same on every DDP rank
        if is_rank_zero():
            split_path.write_text(json.dumps({"source": table.source, "valid_rows": valid_idx}))
    frame = table.frame
    mask = frame.index.isin(valid_idx)
    # Both parts keep the table's row numbers, so errors and bad_rows.csv point at the user's rows.
    return (
        Table(frame[~mask], table.base_dir, table.source),
        Table(frame[mask], table.base_dir, f"{table.source} (validation split)"),
    )


def carve_validation(cfg: Config, frame: pd.DataFrame) -> list[int]:
    """The validation row positions: ``data.valid_fraction`` of the rows, stratified when it can be."""
    labels = pd.Series([("<missing>" if is_missing(v) else str(v)) for v in label_values(cfg, frame)])
    stratify = None
    if cfg.label.task in ("binary", "multiclass"):
        counts = labels.value_counts()
        if (counts >= 2).all() and len(counts) <= cfg.data.valid_fraction * len(frame):
            stratify = labels
    _, valid_idx = train_test_split(
        np.arange(len(frame)),
        test_size=cfg.data.valid_fraction,
        random_state=cfg.training.seed,
        stratify=stratify,
    )
    return sorted(int(i) for i in valid_idx)


def fit_task(cfg: Config, table: Table) -> Task:
    """The config's task fitted on the table's (non-missing) labels."""
    task = make_task_for(cfg)
    labels = [v for v in label_values(cfg, table.frame) if not is_missing(v)]
    task.fit(labels)
    return task


def label_values(cfg: Config, frame: pd.DataFrame) -> pd.Series:
    """The label column, or all-missing labels (indexed like ``frame``) when the config has none."""
    if cfg.label.column:
        return frame[cfg.label.column]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def fit_preprocessors(cfg: Config, table: Table) -> dict[str, Preprocessor]:
    """Every input's preprocessor fitted on the table (an ``init_from`` tower's is kept as pretrained)."""
    preprocessors = make_preprocessors(cfg)
    pretrained = pretrained_preprocessors(cfg, preprocessors)
    for spec in input_specs(cfg):
        if spec.name not in pretrained:  # init_from: the pretrained tower's state, never refitted
            preprocessors[spec.name].fit(fit_values(spec, table.frame, table.base_dir))
    return preprocessors


def labelled_examples(
    cfg: Config, frame: pd.DataFrame, preprocessors: dict[str, Preprocessor], task: Task, base_dir: Path,
    progress: Any = None,
) -> tuple[list[Example], list[BadRow]]:
    """The usable rows of ``frame`` preprocessed with their encoded labels, and every bad row (a cell or a
    label that cannot be used) in row order; what training, streaming and ``validate`` all do."""
    examples, bad = make_examples(frame, input_specs(cfg), preprocessors, cfg, base_dir, progress)
    examples, bad_labels = attach_targets(examples, label_values(cfg, frame), task, cfg.label.column)
    return examples, sorted(bad + bad_labels, key=lambda b: b.row)


def prepare_examples(
    cfg: Config, table: Table, preprocessors: dict[str, Preprocessor], task: Task, ctx: RunContext, name: str
) -> list[Example]:
    """The table's rows preprocessed (with progress), bad rows handled by ``data.on_bad_row``.

    Raises:
        DataError: no usable row is left. BadRowError: a bad row under ``on_bad_row: error``.
    """
    def progress(rows: Any, total: int) -> Any:
        return track(
            rows,
            total=total,
            description=f"preparing {name} rows",
            console=ctx.console,
            disable=not ctx.progress,
            transient=True,
        )

    examples, bad = labelled_examples(cfg, table.frame, preprocessors, task, table.base_dir, progress)
    apply_bad_row_policy(bad, cfg.data.on_bad_row, ctx.out if ctx.writes else None, table.source)
    if bad:
        ctx.console.print(
            f"[yellow]Skipped {len(bad)} bad row(s) of {table.source}; see {ctx.out / BAD_ROWS_FILE}[/yellow]"
        )
    if not examples:
        raise DataError(f"no usable rows in {table.source}; see {ctx.out / BAD_ROWS_FILE}")
    return examples


def make_loader(cfg: Config, examples: list[Example], shuffle: bool = False) -> DataLoader[Example]:
    """A DataLoader over prepared examples with the config's batch size and workers (seeded shuffling)."""
    import torch

    generator = torch.Generator().manual_seed(cfg.training.seed) if shuffle else None
    return DataLoader(
        ExampleDataset(examples),
        batch_size=cfg.training.batch_size,
        shuffle=shuffle,
        collate_fn=collate,
        num_workers=cfg.training.num_workers,
        generator=generator,
    )
