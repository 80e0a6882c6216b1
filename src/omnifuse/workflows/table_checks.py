"""Checks a table against a config without training: every row preprocessed, every problem reported.

``omnifuse validate --config CONFIG --data TABLE [--out DIR]`` is a thin shell over ``validate_table``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from omnifuse.build import make_task_for
from omnifuse.config.sections import Config
from omnifuse.data.dataset import BadRow
from omnifuse.data.io import Table, is_missing, read_table
from omnifuse.data.leaks import WARNINGS_FILE, Finding, find_config_problems, print_findings, write_findings
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import BAD_ROWS_FILE, check_columns, write_bad_rows
from omnifuse.tasks.base import Task
from omnifuse.workflows.prepare import fit_preprocessors, label_values, labelled_examples


@dataclass(frozen=True)
class ColumnSummary:
    """What one configured column (or the label) holds."""

    column: str
    type: str  # the column type of the config, or "label (<task>)"
    missing: int  # empty cells
    bad: int  # rows whose first problem is in this column
    detail: str  # numeric range, distinct categories, text length or file count


@dataclass
class ValidationReport:
    """The result of ``validate_table``."""

    source: str  # the table as given
    rows: int  # rows checked
    bad_rows: list[BadRow] = field(default_factory=list)  # one entry per unusable row (its first problem)
    columns: list[ColumnSummary] = field(default_factory=list)
    bad_rows_file: Path | None = None  # where bad_rows.csv was written, when ``out`` was given
    findings: list[Finding] = field(default_factory=list)  # leaks, row ids, constant and empty inputs
    warnings_file: Path | None = None  # where column_warnings.csv was written (when there are findings)

    @property
    def ok(self) -> bool:
        """True when every row can be used (findings are warnings: they do not make it False)."""
        return not self.bad_rows


def validate_table(
    config: Config | str | Path,
    data: str | Path | pd.DataFrame,
    out: str | Path | None = None,
    console: Console | None = None,
) -> ValidationReport:
    """Reads ``data``, fits the task and preprocessors on it as training would, preprocesses every row.

    Nothing is trained and no model is built. Bad rows are collected whatever ``data.on_bad_row`` says.

    Args:
        config: a Config or the path of a YAML config.
        data: a labelled table (CSV/TSV/Parquet/JSONL path or DataFrame); relative file paths in its cells
            are read from the table's folder.
        out: a folder; when given, ``bad_rows.csv`` is (re)written there if there are bad rows, and
            ``column_warnings.csv`` if an input column leaks the label, is a row id, constant or empty.
        console: where the report is printed; None prints nothing.

    Returns:
        The ValidationReport.

    Raises:
        ConfigError, UnknownNameError: the config is invalid.
        DataError: the table cannot be read or lacks configured columns.
    """
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    table = read_table(data)
    check_columns(table.frame, cfg, table.source, need_label=True)
    task = make_task_for(cfg)  # contrastive configs: shaped by their contrastive section
    task.fit([v for v in _labels(cfg, table.frame) if not is_missing(v)])
    preprocessors = fit_preprocessors(cfg, table)  # as training fits them (init_from towers kept)
    bad = _bad_rows(cfg, table, preprocessors, task)
    report = ValidationReport(table.source, len(table.frame), bad, summarize(cfg, table.frame, bad))
    report.findings = find_config_problems(cfg, table.frame)
    if out is not None:
        bad_path, warnings_path = Path(out) / BAD_ROWS_FILE, Path(out) / WARNINGS_FILE
        report.bad_rows_file = _rewrite(bad_path, bad, lambda: write_bad_rows(bad, bad_path, table.source))
        report.warnings_file = _rewrite(warnings_path, report.findings,
                                        lambda: write_findings(report.findings, warnings_path))
    if console is not None:
        print_report(report, console)
    return report


def _labels(cfg: Config, frame: pd.DataFrame) -> pd.Series:
    """The label column, or all-missing labels when the config has none (contrastive pretraining)."""
    return label_values(cfg, frame)


def _bad_rows(cfg: Config, table: Table, preprocessors: dict[str, Preprocessor], task: Task) -> list[BadRow]:
    return labelled_examples(cfg, table.frame, preprocessors, task, table.base_dir)[1]


def _rewrite(path: Path, items: Sequence[object], write: Callable[[], None]) -> Path | None:
    """A fresh ``path`` per run (write_bad_rows appends), written by ``write`` only when there are items."""
    if path.exists():
        path.unlink()
    if not items:
        return None
    write()
    return path


def summarize(cfg: Config, frame: pd.DataFrame, bad: list[BadRow]) -> list[ColumnSummary]:
    """One summary per configured column (ignored ones left out), then the label (when there is one)."""
    bad_by_column: dict[str, int] = {}
    for b in bad:
        bad_by_column[b.column] = bad_by_column.get(b.column, 0) + 1
    kinds = cfg.table_types()
    if cfg.label.column:  # a contrastive config may have no label
        kinds[cfg.label.column] = f"label ({cfg.label.task})"
    summaries = []
    for name, kind in kinds.items():
        values = frame[name]
        missing = int(sum(is_missing(v) for v in values))
        detail = _detail(kind, values)
        summaries.append(ColumnSummary(name, kind, missing, bad_by_column.get(name, 0), detail))
    return summaries


def _detail(kind: str, values: pd.Series) -> str:
    present = [v for v in values if not is_missing(v)]
    if kind == "numeric":
        numbers = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
        finite = numbers[numbers.abs() < float("inf")]
        if finite.empty:
            return "no finite numbers"
        return f"min {finite.min():.4g}, mean {finite.mean():.4g}, max {finite.max():.4g}"
    if kind == "text":
        lengths = [len(str(v)) for v in present]
        return f"{max(lengths, default=0)} characters at most" if lengths else "no text"
    if kind in ("image", "audio", "video"):
        return f"{len(present)} file path(s)"
    distinct = sorted({str(v) for v in present})
    shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
    return f"{len(distinct)} distinct: {shown}"


def print_report(report: ValidationReport, console: Console) -> None:
    """Prints the column summaries, the bad rows (at most 50) and a one-line verdict."""
    console.print(f"Checked {report.rows} row(s) of {report.source}", markup=False, highlight=False)
    columns = RichTable()
    for header in ("column", "type", "missing", "bad", "values"):
        columns.add_column(header)
    for c in report.columns:
        columns.add_row(c.column, c.type, str(c.missing), str(c.bad), c.detail)
    console.print(columns)
    if report.bad_rows:
        rows = RichTable(title=f"{len(report.bad_rows)} bad row(s)")
        for header in ("row", "column", "value", "reason", "fix"):
            rows.add_column(header, overflow="fold")
        for b in report.bad_rows[:50]:
            rows.add_row(str(b.row), b.column, b.value, b.reason, b.fix)
        console.print(rows)
    print_findings(report.findings, console)
    console.print(_verdict(report), markup=False, highlight=False)


def _verdict(report: ValidationReport) -> str:
    if report.findings:
        where = f", listed in {report.warnings_file}" if report.warnings_file else ""
        warned = f" ({len(report.findings)} column warning(s) above{where})"
    else:
        warned = ""
    if report.ok:
        return f"OK: all {report.rows} row(s) of {report.source} can be used{warned}."
    where = f"; listed in {report.bad_rows_file}" if report.bad_rows_file else ""
    return (
        f"{len(report.bad_rows)} of {report.rows} row(s) of {report.source} are bad{where}. Fix them, or set "
        f"data.on_bad_row: skip to train without them{warned}."
    )


def run_validate(config: Path, data: Path, out: Path | None, console: Console) -> int:
    """The ``omnifuse validate`` command: prints the report; returns the exit code.

    Returns:
        0 when the table is clean, 1 when it has bad rows, 2 on a config or table error (printed).
        Column warnings (a leak, a row id, a constant or empty input) do not change it.
    """
    from omnifuse.errors import OmnifuseError

    try:
        report = validate_table(config, data, out, console)
    except OmnifuseError as exc:
        console.print("[bold red]error:[/bold red] ", end="")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2
    return 0 if report.ok else 1
