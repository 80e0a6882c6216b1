"""Training-time augmentation: per-column pipelines of registered transforms (see ``augment.base``).

Importing this package registers every transform (explicit imports, no magic).
"""

from __future__ import annotations

from typing import Any

import omnifuse.augment.audio
import omnifuse.augment.image  # noqa: F401  (registers the transforms)
from omnifuse.augment.base import AUGMENTS, AugmentSpec, Pipeline, augment_batch
from omnifuse.config.parsing import from_dict
from omnifuse.config.sections import ColumnConfig, Config
from omnifuse.errors import ConfigError
from omnifuse.registry import unknown_name_message

__all__ = ["AUGMENTS", "Pipeline", "augment_batch", "build_pipelines", "augment_problems", "resolved_augment"]

MODALITY_READS = {"image": ("pixels",), "audio": ("mel", "mask")}


def resolved_augment(column: ColumnConfig) -> dict[str, dict[str, Any]]:
    """The transforms a column gets: ``auto`` -> its encoder's defaults, ``none`` -> none, else as written."""
    if isinstance(column.augment, dict):
        return {name: dict(opts or {}) for name, opts in column.augment.items()}
    if column.augment == "none" or column.encoder is None:
        return {}
    from omnifuse.encoders.base import ENCODERS

    spec = ENCODERS.get(column.encoder.name)
    return {name: dict(opts) for name, opts in spec.augment.items()}


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
        from_dict(spec.options, options, f"{path}.{tname}", problems)
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
            problems: list[str] = []
            options: Any = from_dict(spec.options, raw, f"columns.{name}.augment.{tname}", problems)
            if problems:
                raise ConfigError(problems)
            built.append(spec.build(options))
        pipelines[name] = Pipeline(name, list(transforms), specs, built)
    return pipelines
