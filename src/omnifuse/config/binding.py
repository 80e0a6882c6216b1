"""Parses every component's options into its registry entry's dataclass, once, at load.

``Config.from_dict`` calls ``bind_options`` after ``fill_defaults``: each encoder, the tabular encoder and
the fusion get ``ComponentConfig.parsed``, each media column ``ColumnConfig.parsed_augment``. The checks
(``config.checks``) report the problems found here; ``build`` and the augmentation pipelines take the typed
values from here and never parse again. A config built in code (no load) is parsed when it is first built
(``parsing.typed_options``), and so is one whose options changed after load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnifuse import catalog  # noqa: F401  (fills the registries)
from omnifuse.augment import AUGMENTS  # the package: importing it registers the transforms
from omnifuse.config.base import TABULAR_INPUT, ComponentConfig
from omnifuse.config.parsing import ParsedOptions, parse_options, parsed_or_now, typed_options
from omnifuse.encoders.base import ENCODERS
from omnifuse.fusion.base import FUSIONS

if TYPE_CHECKING:
    from omnifuse.config.sections import ColumnConfig, Config


def bind_options(config: Config) -> None:
    """Sets ``parsed`` on every registered component and ``parsed_augment`` on every media column."""
    config.tabular.parsed = _parse_component(config.tabular, ENCODERS, f"{TABULAR_INPUT}.encoder")
    config.fusion.parsed = _parse_component(config.fusion, FUSIONS, "fusion")
    for name, column in config.columns.items():
        if column.encoder is not None:
            column.encoder.parsed = _parse_component(column.encoder, ENCODERS, f"columns.{name}.encoder")
        transforms = resolved_augment(column)
        column.parsed_augment = {
            t: parse_options(AUGMENTS.get(t).options, raw, f"columns.{name}.augment.{t}")
            for t, raw in transforms.items() if t in AUGMENTS
        }


def _parse_component(component: ComponentConfig, registry: Any, path: str) -> ParsedOptions | None:
    """The parsed options; None for a name the registry does not hold (the checks report it)."""
    if not isinstance(component.name, str) or component.name not in registry:
        return None
    return parse_options(registry.get(component.name).options, component.options, path)


def component_problems(component: ComponentConfig, options_cls: type, path: str) -> list[str]:
    """The problems of a component's options (those found at load when they are still current)."""
    return list(parsed_or_now(component.parsed, options_cls, component.options, path).problems)


def encoder_options(component: ComponentConfig, path: str) -> Any:
    """An encoder's typed options (``path`` names it in errors).

    Raises:
        ConfigError: they have problems (normally reported at load).
    """
    return typed_options(component.parsed, ENCODERS.get(component.name).options, component.options, path)


def fusion_options(component: ComponentConfig) -> Any:
    """A fusion's typed options (see ``encoder_options``)."""
    return typed_options(component.parsed, FUSIONS.get(component.name).options, component.options, "fusion")


def augment_options(column: ColumnConfig, transform: str, raw: Any, path: str) -> Any:
    """One of a column's transforms' typed options (see ``encoder_options``)."""
    parsed = column.parsed_augment.get(transform)
    return typed_options(parsed, AUGMENTS.get(transform).options, raw, path)


def augment_option_problems(column: ColumnConfig, transform: str, raw: Any, path: str) -> list[str]:
    """The problems of one transform's options (those found at load when they are still current)."""
    parsed = column.parsed_augment.get(transform)
    return list(parsed_or_now(parsed, AUGMENTS.get(transform).options, raw, path).problems)


def resolved_augment(column: ColumnConfig) -> dict[str, dict[str, Any]]:
    """The transforms a column gets: ``auto`` -> its encoder's defaults, ``none`` -> none, else as written."""
    if isinstance(column.augment, dict):
        return {name: dict(opts or {}) for name, opts in column.augment.items()}
    if column.augment != "auto" or column.encoder is None or column.encoder.name not in ENCODERS:
        return {}
    spec = ENCODERS.get(column.encoder.name)
    return {name: dict(opts) for name, opts in spec.augment.items()}
