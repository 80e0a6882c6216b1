"""Per-column augmentation from the config: the checks of ``augment:`` and the pipelines training runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnifuse.augment.base import AUGMENTS, MODALITY_READS, AugmentSpec, Pipeline
from omnifuse.config.binding import augment_option_problems, augment_options, resolved_augment
from omnifuse.registry import unknown_name_message

if TYPE_CHECKING:
    from omnifuse.config.sections import ColumnConfig, Config

__all__ = ["augment_problems", "build_pipelines", "resolved_augment"]


def augment_problems(config: Config) -> list[str]:
    """Every problem of the columns' ``augment`` settings (names, options, fit with the encoder)."""
    problems: list[str] = []
    for name, column in config.columns.items():
        path = f"columns.{name}.augment"
        if isinstance(column.augment, str):
            if column.augment not in ("auto", "none"):
                problems.append(f"{path}: {column.augment!r} is not auto, none or a mapping of transforms "
                                f"({', '.join(AUGMENTS.names())}); e.g. augment: {{affine: {{degrees: 10}}}}")
            continue
        problems += _transform_problems(path, column, column.augment)
    return problems


def _transform_problems(path: str, column: ColumnConfig, transforms: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for tname, options in transforms.items():
        if tname not in AUGMENTS:
            problems.append(f"{path}: {unknown_name_message('augmentation', tname, AUGMENTS.names())}")
            continue
        spec = AUGMENTS.get(tname)
        raw = {} if options is None else options
        problems += augment_option_problems(column, tname, raw, f"{path}.{tname}")
        reads = MODALITY_READS.get(column.type)
        if reads != spec.reads:
            fits = [n for n in AUGMENTS.names() if AUGMENTS.get(n).reads == reads]
            problems.append(f"{path}.{tname}: transforms {', '.join(spec.reads)} tensors, which "
                            f"{column.type} columns do not give; "
                            + (f"use one of {', '.join(fits)}" if fits else "remove this column's augment"))
    return problems


def build_pipelines(config: Config, skip: set[str] | None = None) -> dict[str, Pipeline]:
    """One pipeline per media column with transforms (columns in ``skip``, e.g. cached ones, get none).

    Raises:
        ConfigError: a transform's options are invalid (normally caught when the config is loaded).
    """
    pipelines: dict[str, Pipeline] = {}
    for name, column in config.media_columns().items():
        transforms = resolved_augment(column)
        if not transforms or name in (skip or set()):
            continue
        specs: list[AugmentSpec] = [AUGMENTS.get(t) for t in transforms]
        built = []
        for spec, (tname, raw) in zip(specs, transforms.items(), strict=True):
            built.append(spec.build(augment_options(column, tname, raw, f"columns.{name}.augment.{tname}")))
        pipelines[name] = Pipeline(name, list(transforms), specs, built)
    return pipelines
