"""Turns table rows into preprocessed Examples, finding every bad row before training starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import Dataset

from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.data.io import check_inside, is_missing, resolve_path
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.errors import BadValueError
from omnifuse.tasks.base import Task

FILE_MODALITIES = ("image", "audio", "video")


@dataclass(frozen=True)
class BadRow:
    """Why one row cannot be used."""

    row: int
    column: str
    value: str
    reason: str
    fix: str


class ExampleDataset(Dataset[Example]):
    """A map-style dataset over already-preprocessed examples."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]


def input_specs(config: Config) -> list[InputSpec]:
    """The model inputs of ``config``, sorted by name."""
    from omnifuse.config.sections import TABULAR_INPUT

    specs = [InputSpec(n, c.type, {c.source or n: c.type}) for n, c in config.media_columns().items()]
    tabular = {n: c.type for n, c in config.tabular_columns().items()}
    if tabular:
        specs.append(InputSpec(TABULAR_INPUT, "tabular", tabular))
    return sorted(specs, key=lambda s: s.name)


def cell_column(spec: InputSpec) -> str:
    """The table column a media input reads: its own name, or its ``source`` column."""
    return next(iter(spec.columns))


def fit_values(spec: InputSpec, frame: pd.DataFrame, base_dir: Path) -> list[Any]:
    """The non-missing training values a preprocessor is fitted on."""
    if spec.modality == "tabular":
        return [
            dict(zip(spec.columns, vals, strict=True)) for vals in frame[list(spec.columns)].itertuples(False)
        ]
    values = [v for v in frame[cell_column(spec)] if not is_missing(v)]
    if spec.modality in FILE_MODALITIES:
        return [resolve_path(str(v), base_dir) for v in values]
    return [str(v) for v in values]


def _media_cell(
    spec: InputSpec, pre: Preprocessor, value: Any, base_dir: Path, allow_missing: bool, allow_outside: bool
) -> tuple[dict[str, Any], bool]:
    if is_missing(value):
        if allow_missing:
            return pre.blank(), False
        raise BadValueError(
            "the cell is empty",
            f"fill it, or set columns.{spec.name}.allow_missing: true to treat it as a missing modality",
        )
    if spec.modality in FILE_MODALITIES:
        if isinstance(value, (bytes, bytearray)):
            return pre(bytes(value)), True
        path = resolve_path(str(value), base_dir)
        check_inside(path, base_dir, allow_outside, shown=str(value))  # first: says nothing of what exists
        if not path.exists():
            raise BadValueError(f"file {str(value)!r} does not exist (looked for {path})", "fix the path")
        return pre(path), True
    return pre(str(value)), True


def make_example(
    index: int,
    row: dict[str, Any],
    specs: Sequence[InputSpec],
    preprocessors: dict[str, Preprocessor],
    config: Config,
    base_dir: Path,
    allow_outside: bool | None = None,
) -> tuple[Example | None, BadRow | None]:
    """Preprocesses one row; returns (example, None) or (None, the first problem found).

    ``allow_outside``: whether file paths may resolve outside ``base_dir``; None reads
    ``config.data.allow_outside_paths``.
    """
    outside = config.data.allow_outside_paths if allow_outside is None else allow_outside
    inputs: dict[str, Any] = {}
    presence: dict[str, bool] = {}
    for spec in specs:
        pre = preprocessors[spec.name]
        try:
            if spec.modality == "tabular":
                inputs[spec.name], presence[spec.name] = pre({c: row[c] for c in spec.columns}), True
            else:
                allow = config.columns[spec.name].allow_missing
                inputs[spec.name], presence[spec.name] = _media_cell(
                    spec, pre, row[cell_column(spec)], base_dir, allow, outside
                )
        except BadValueError as exc:
            column = exc.column or cell_column(spec)
            value = exc.value if exc.column else row.get(cell_column(spec), "")
            return None, BadRow(index, column, _short(value), exc.reason, exc.fix)
    return Example(index=index, inputs=inputs, presence=presence), None


def make_examples(
    frame: pd.DataFrame,
    specs: Sequence[InputSpec],
    preprocessors: dict[str, Preprocessor],
    config: Config,
    base_dir: Path,
    progress: Callable[[Iterator[Any], int], Iterator[Any]] | None = None,
    allow_outside: bool | None = None,
) -> tuple[list[Example], list[BadRow]]:
    """Preprocesses every row; bad rows are collected, never silently dropped (``allow_outside``: see
    ``make_example``)."""
    records = frame.to_dict(orient="records")
    rows: Iterator[Any] = iter(zip(frame.index, records, strict=True))  # row ids: the table's own index
    if progress is not None:
        rows = progress(rows, len(records))
    return examples_from_records(rows, specs, preprocessors, config, base_dir, allow_outside)


def examples_from_records(
    rows: Iterable[tuple[Any, dict[str, Any]]],
    specs: Sequence[InputSpec],
    preprocessors: dict[str, Preprocessor],
    config: Config,
    base_dir: Path,
    allow_outside: bool | None = None,
) -> tuple[list[Example], list[BadRow]]:
    """Preprocesses (row id, row dict) pairs; bad rows are collected, never silently dropped
    (``allow_outside``: see ``make_example``)."""
    examples: list[Example] = []
    bad: list[BadRow] = []
    for row_id, row in rows:
        example, problem = make_example(
            int(row_id), row, specs, preprocessors, config, base_dir, allow_outside
        )
        if example is not None:
            examples.append(example)
        if problem is not None:
            bad.append(problem)
    return examples, bad


def attach_targets(
    examples: list[Example], labels: pd.Series, task: Task, column: str
) -> tuple[list[Example], list[BadRow]]:
    """Encodes each example's label (``labels`` indexed like the table); unusable labels become bad rows."""
    row_ids = list(labels.index)
    problems = {row_ids[i]: (reason, fix) for i, reason, fix in task.check_labels(list(labels))}
    kept: list[Example] = []
    bad: list[BadRow] = []
    for ex in examples:
        if ex.index in problems:
            reason, fix = problems[ex.index]
            bad.append(BadRow(ex.index, column, _short(labels.loc[ex.index]), reason, fix))
            continue
        ex.target = task.encode(labels.loc[ex.index])
        kept.append(ex)
    return kept, bad


def _short(value: Any, limit: int = 80) -> str:
    text = "" if is_missing(value) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
