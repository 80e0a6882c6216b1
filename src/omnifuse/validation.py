"""Checks a parsed Config against the registries and value ranges; reports every problem at once."""

from __future__ import annotations

from typing import Any

from omnifuse.config import DEFAULT_ENCODERS, MEDIA_TYPES, TABULAR_TYPES, ComponentConfig, Config
from omnifuse.registry import unknown_name_message
from omnifuse.typed import from_dict


def config_problems(config: Config) -> list[str]:
    """Every problem of ``config``; fills in the default encoder of media columns that name none."""
    from omnifuse import catalog  # noqa: F401  (fills the registries)

    problems: list[str] = []
    problems += _column_problems(config)
    problems += _component_problems("tabular", config.tabular, "encoder", modality="tabular")
    problems += _component_problems("fusion", config.fusion, "fusion", modality=None)
    problems += _range_problems(config)
    return problems


def _column_problems(config: Config) -> list[str]:
    problems: list[str] = []
    label = config.label.column
    if label in config.columns and config.columns[label].type != "ignore":
        problems.append(f"columns.{label}: is the label column; remove it from columns (or set type: ignore)")
    inputs = [n for n, c in config.columns.items() if c.type != "ignore" and n != label]
    if not inputs:
        problems.append("columns: no input column; list at least one column that is not the label")
    for name, column in config.columns.items():
        path = f"columns.{name}"
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
            f"{path}: encoder {comp.name!r} reads {spec.modality}, not {modality}; use one of {', '.join(fits)}"
        )
    from_dict(spec.options, comp.options, path, problems)
    if comp.lr_mult < 0:
        problems.append(f"{path}.lr_mult: must be >= 0, got {comp.lr_mult}")
    if comp.freeze_epochs < -1:
        problems.append(f"{path}.freeze_epochs: must be -1 (always frozen) or >= 0, got {comp.freeze_epochs}")
    return problems


def _range_problems(config: Config) -> list[str]:
    t, d, h = config.training, config.data, config.head
    checks: list[tuple[bool, str]] = [
        (t.epochs >= 1, f"training.epochs: must be >= 1, got {t.epochs}"),
        (t.batch_size >= 1, f"training.batch_size: must be >= 1, got {t.batch_size}"),
        (t.lr > 0, f"training.lr: must be > 0, got {t.lr}"),
        (t.weight_decay >= 0, f"training.weight_decay: must be >= 0, got {t.weight_decay}"),
        (0 <= t.warmup_ratio < 1, f"training.warmup_ratio: must be in [0, 1), got {t.warmup_ratio}"),
        (t.grad_clip >= 0, f"training.grad_clip: must be >= 0 (0 disables), got {t.grad_clip}"),
        (t.accumulate >= 1, f"training.accumulate: must be >= 1, got {t.accumulate}"),
        (t.patience >= 1, f"training.patience: must be >= 1, got {t.patience}"),
        (0 <= t.modality_dropout < 1, f"training.modality_dropout: must be in [0, 1), got {t.modality_dropout}"),
        (t.num_workers >= 0, f"training.num_workers: must be >= 0, got {t.num_workers}"),
        (0 < d.valid_fraction < 1, f"data.valid_fraction: must be in (0, 1), got {d.valid_fraction}"),
        (h.hidden_dim >= 0, f"head.hidden_dim: must be >= 0 (0: one linear layer), got {h.hidden_dim}"),
        (0 <= h.dropout < 1, f"head.dropout: must be in [0, 1), got {h.dropout}"),
    ]
    return [message for ok, message in checks if not ok]
