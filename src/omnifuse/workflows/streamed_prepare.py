"""Training data for ``data.streaming: true``: fit on a bounded sample, stream the rest batch by batch.

- Validation: the ``--valid`` table, or else the first ``data.stream_valid_rows`` rows of the training
  table (training then starts after them).
- Preprocessors (vocabularies, tabular statistics, ...) are fitted on the next
  ``data.stream_sample_rows`` rows; for regression and multilabel the task (label mean/std, classes)
  too. Classification classes come from a scan of the whole label column (one column in memory at a time,
  distinct values only), so no class is missed.
- Bad rows are found as batches are read: with ``data.on_bad_row: skip`` the first epoch writes each
  batch's bad rows to a file of its own (``checkpoints/bad_rows/``; the DDP ranks and loader workers that
  read the batches never share a file), and rank 0 merges them into bad_rows.csv in row order after
  training (``RowPreparer.merge_bad_rows``); ``error`` stops training at the first one (run
  ``omnifuse validate`` first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.build import make_task_for
from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.data.io import Table, read_table
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import (
    BAD_ROW_PARTS,
    BAD_ROWS_FILE,
    apply_bad_row_policy,
    check_columns,
    merge_bad_row_parts,
    write_bad_row_part,
)
from omnifuse.data.streaming import ParquetStream, label_classes, parquet_file, read_rows
from omnifuse.errors import DataError
from omnifuse.tasks.base import Task
from omnifuse.workflows.prepare import (
    PreparedData,
    RunContext,
    fit_preprocessors,
    labelled_examples,
    prepare_examples,
)
from omnifuse.workflows.prepare import fit_task as fit_sample_task


class RowPreparer:
    """Turns one streamed batch of rows into Examples and handles its bad rows (picklable for workers).

    Args:
        cfg / preprocessors / task: as fitted on the sample.
        base_dir: the folder file paths are resolved against.
        out: the output folder, which holds bad_rows.csv and the per-batch parts (``on_bad_row: skip``).
        source: the table's name in messages and bad_rows.csv.
    """

    def __init__(self, cfg: Config, preprocessors: dict[str, Preprocessor], task: Task, base_dir: Path,
                 out: Path, source: str) -> None:
        self.cfg, self.preprocessors, self.task = cfg, preprocessors, task
        self.base_dir, self.out, self.source = base_dir, out, source

    def __call__(self, frame: pd.DataFrame, report: bool) -> list[Example]:
        """Examples of the good rows of ``frame``; raises (policy error) or records (skip) the bad ones."""
        examples, bad = labelled_examples(self.cfg, frame, self.preprocessors, self.task, self.base_dir)
        if bad and self.cfg.data.on_bad_row == "error":
            apply_bad_row_policy(bad, "error", None, self.source)
        if bad and report:
            write_bad_row_part(bad, self.out / BAD_ROW_PARTS, self.source)
        return examples

    def merge_bad_rows(self) -> tuple[int, Path]:
        """Merges the batches' bad rows into bad_rows.csv (one process, rank 0, after training); returns
        their number and the file."""
        path = self.out / BAD_ROWS_FILE
        return merge_bad_row_parts(path, self.out / BAD_ROW_PARTS, self.source), path


def prepare_streaming(cfg: Config, train: Any, valid: Any, test: Any, ctx: RunContext, *,
                      base_dir: str | Path | None = None) -> PreparedData:
    """Fits the task and preprocessors on a bounded sample and sets up the training stream.

    Raises:
        DataError: the training table is not a Parquet file, lacks a column, or has no training rows.
    """
    file, d = parquet_file(train), cfg.data
    path = Path(str(train)).expanduser()
    root = None if base_dir is None else Path(base_dir).resolve()
    folder = root or path.parent.resolve()
    check_columns(pd.DataFrame(columns=file.schema_arrow.names), cfg, str(train), need_label=True)
    columns = [*cfg.table_columns(), cfg.label.column]
    held = 0 if valid is not None else d.stream_valid_rows
    total = int(file.metadata.num_rows)
    if total <= held:
        raise DataError(f"table {str(train)!r} has {total} rows, not more than data.stream_valid_rows "
                        f"({held}) held out for validation; lower it or pass a validation table")
    head = read_rows(file, columns, 0, held + d.stream_sample_rows, d.stream_batch_rows)
    sample = Table(head.loc[held:], folder, f"{train} (rows {held}-{len(head) - 1}, the fitting sample)")
    task = _fit_task(cfg, sample, file, d.stream_batch_rows)
    preprocessors = fit_preprocessors(cfg, sample)
    tables = {"valid": read_table(valid, root) if valid is not None
              else Table(head.loc[: held - 1], folder, f"{train} (first {held} rows: validation)")}
    if test is not None:
        tables["test"] = read_table(test, root)
    for table in tables.values():
        check_columns(table.frame, cfg, table.source, need_label=True)
    examples = {name: prepare_examples(cfg, t, preprocessors, task, ctx, name) for name, t in tables.items()}
    preparer = RowPreparer(cfg, preprocessors, task, folder, ctx.out, str(train))
    group = cfg.training.batch_size if cfg.training.group_by_length else 0
    stream = ParquetStream(path, columns, held, d.stream_batch_rows, preparer, shuffle=True,
                           seed=cfg.training.seed, group_size=group)
    return PreparedData(task, preprocessors, examples, train_stream=stream,
                        merge_bad_rows=preparer.merge_bad_rows)


def _fit_task(cfg: Config, sample: Table, file: Any, batch_rows: int) -> Task:
    """Classification: classes of the whole label column; other tasks: fitted on the sample."""
    if cfg.label.task not in ("binary", "multiclass"):
        return fit_sample_task(cfg, sample)
    task = make_task_for(cfg)
    task.fit(label_classes(file, cfg.label.column, batch_rows))
    return task
