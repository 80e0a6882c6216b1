"""Checks a parsed Config against the registries and value ranges; reports every problem at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnifuse.config import (
    DEFAULT_ENCODERS,
    MEDIA_TYPES,
    TABULAR_INPUT,
    TABULAR_TYPES,
    ComponentConfig,
    Config,
)
from omnifuse.registry import unknown_name_message
from omnifuse.typed import from_dict


def config_problems(config: Config) -> list[str]:
    """Every problem of ``config``; fills in the default encoder of media columns that name none."""
    from omnifuse import catalog  # noqa: F401  (fills the registries)

    problems: list[str] = []
    problems += _column_problems(config)
    problems += _component_problems("tabular", config.tabular, "encoder", modality="tabular")
    problems += _component_problems("fusion", config.fusion, "fusion", modality=None)
    problems += _fusion_input_problems(config)
    problems += _range_problems(config)
    problems += _monitor_problems(config)
    return problems


def _fusion_input_problems(config: Config) -> list[str]:
    from omnifuse.fusion.base import FUSIONS

    if config.fusion.name not in FUSIONS:
        return []  # reported by _component_problems
    count = FUSIONS.get(config.fusion.name).num_inputs
    inputs = config.input_names()
    if count is None or len(inputs) == count:
        return []
    return [f"fusion: {config.fusion.name!r} fuses exactly {count} inputs, this config has {len(inputs)} "
            f"({', '.join(inputs)}); set the other columns to type: ignore, or choose another fusion"]


MONITORS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc", "loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc", "loss"),
    "multilabel": ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "loss"),
    "regression": ("rmse", "mae", "r2", "loss"),
}


def _monitor_problems(config: Config) -> list[str]:
    monitor, task = config.training.monitor, config.label.task
    choices = MONITORS.get(task)
    if monitor == "auto" or choices is None or monitor in choices:
        return []
    return [f"training.monitor: {monitor!r} is not a {task} metric; use auto or one of {', '.join(choices)}"]


def _column_problems(config: Config) -> list[str]:
    problems: list[str] = []
    label = config.label.column
    if label in config.columns and config.columns[label].type != "ignore":
        problems.append(f"columns.{label}: is the label column; remove it from columns (or set type: ignore)")
    inputs = [n for n, c in config.columns.items() if c.type != "ignore" and n != label]
    if not inputs:
        problems.append("columns: no input column; list at least one column that is not the label")
    has_tabular = any(c.type in TABULAR_TYPES for c in config.columns.values())
    for name, column in config.columns.items():
        path = f"columns.{name}"
        if name == TABULAR_INPUT and column.type in MEDIA_TYPES and has_tabular:
            problems.append(
                f"{path}: the name 'tabular' is reserved for the numeric/categorical columns' "
                "shared input; rename this column in the table and the config"
            )
        if column.type == "video":
            problems.append(f"{path}: video columns are not supported yet; set type: ignore for now")
        elif column.type in MEDIA_TYPES:
            if column.encoder is None:
                column.encoder = ComponentConfig(name=DEFAULT_ENCODERS[column.type])
            problems += _component_problems(f"{path}.encoder", column.encoder, "encoder", column.type)
        elif column.type in TABULAR_TYPES and column.encoder is not None:
            problems.append(
                f"{path}.encoder: {column.type} columns share the 'tabular' encoder; "
                "remove this key and configure the top-level 'tabular' section instead"
            )
    return problems


def _component_problems(path: str, comp: ComponentConfig, kind: str, modality: str | None) -> list[str]:
    from omnifuse.encoders.base import ENCODERS
    from omnifuse.fusion.base import FUSIONS

    registry: Any = ENCODERS if kind == "encoder" else FUSIONS
    if comp.name not in registry:
        names = [n for n in registry.names() if modality is None or ENCODERS.get(n).modality == modality]
        return [f"{path}: {unknown_name_message(kind, comp.name, names)}"]
    spec = registry.get(comp.name)
    problems: list[str] = []
    if modality is not None and spec.modality != modality:
        fits = [n for n in ENCODERS.names() if ENCODERS.get(n).modality == modality]
        problems.append(
            f"{path}: encoder {comp.name!r} reads {spec.modality}, not {modality}; "
            f"use one of {', '.join(fits)}"
        )
    from_dict(spec.options, comp.options, path, problems)
    if isinstance(comp.lr_mult, (int, float)) and comp.lr_mult < 0:
        problems.append(f"{path}.lr_mult: must be >= 0, got {comp.lr_mult}")
    if isinstance(comp.freeze_epochs, int) and comp.freeze_epochs < -1:
        problems.append(f"{path}.freeze_epochs: must be -1 (always frozen) or >= 0, got {comp.freeze_epochs}")
    return problems


def _range_problems(config: Config) -> list[str]:
    t, d, h = config.training, config.data, config.head
    checks: list[tuple[str, object, Callable[[Any], bool], str]] = [
        ("training.epochs", t.epochs, lambda v: v >= 1, "must be >= 1"),
        ("training.batch_size", t.batch_size, lambda v: v >= 1, "must be >= 1"),
        ("training.lr", t.lr, lambda v: v > 0, "must be > 0"),
        ("training.weight_decay", t.weight_decay, lambda v: v >= 0, "must be >= 0"),
        ("training.warmup_ratio", t.warmup_ratio, lambda v: 0 <= v < 1, "must be in [0, 1)"),
        ("training.grad_clip", t.grad_clip, lambda v: v >= 0, "must be >= 0 (0 disables)"),
        ("training.accumulate", t.accumulate, lambda v: v >= 1, "must be >= 1"),
        ("training.patience", t.patience, lambda v: v >= 1, "must be >= 1"),
        ("training.modality_dropout", t.modality_dropout, lambda v: 0 <= v < 1, "must be in [0, 1)"),
        ("training.num_workers", t.num_workers, lambda v: v >= 0, "must be >= 0"),
        ("data.valid_fraction", d.valid_fraction, lambda v: 0 < v < 1, "must be in (0, 1)"),
        ("head.hidden_dim", h.hidden_dim, lambda v: v >= 0, "must be >= 0 (0: one linear layer)"),
        ("head.dropout", h.dropout, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ]
    problems = []
    for path, value, ok, rule in checks:
        try:
            good = ok(value)
        except TypeError:
            continue  # wrong type: already reported while parsing
        if not good:
            problems.append(f"{path}: {rule}, got {value!r}")
    return problems
