"""The only place where configuration becomes modules and preprocessors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnifuse import catalog  # noqa: F401  (fills the registries)
from omnifuse.config import ComponentConfig, Config
from omnifuse.data.dataset import input_specs
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import ENCODERS, Encoder
from omnifuse.errors import ConfigError
from omnifuse.fusion.base import FUSIONS
from omnifuse.heads.base import HEADS
from omnifuse.model import MultimodalModel
from omnifuse.tasks.base import Task
from omnifuse.typed import from_dict


def parse_options(options_cls: type, component: ComponentConfig, path: str) -> Any:
    """The component's options as its typed dataclass."""
    problems: list[str] = []
    options: Any = from_dict(options_cls, component.options, path, problems)
    if problems:
        raise ConfigError(problems)
    return options


def make_preprocessors(config: Config) -> dict[str, Preprocessor]:
    """One unfitted preprocessor per model input."""
    preprocessors: dict[str, Preprocessor] = {}
    for spec in input_specs(config):
        component = config.encoder_of(spec.name)
        entry = ENCODERS.get(component.name)
        options = parse_options(entry.options, component, f"{spec.name}.encoder")
        preprocessors[spec.name] = entry.make_preprocessor(options, spec)
    return preprocessors


def build_encoders(
    config: Config, preprocessors: dict[str, Preprocessor], assets: Path | None
) -> dict[str, Encoder]:
    """Encoders for every input; ``assets`` is the model folder's assets dir when loading a saved model."""
    encoders: dict[str, Encoder] = {}
    for spec in input_specs(config):
        component = config.encoder_of(spec.name)
        entry = ENCODERS.get(component.name)
        options = parse_options(entry.options, component, f"{spec.name}.encoder")
        folder = None if assets is None else assets / spec.name / "encoder"
        encoders[spec.name] = entry.build(options, preprocessors[spec.name], folder)
    return encoders


def build_model(
    config: Config, preprocessors: dict[str, Preprocessor], task: Task, assets: Path | None = None
) -> MultimodalModel:
    """The whole model for ``config``; preprocessors must be fitted (vocabulary sizes come from them)."""
    encoders = build_encoders(config, preprocessors, assets)
    fusion_entry = FUSIONS.get(config.fusion.name)
    fusion_options = parse_options(fusion_entry.options, config.fusion, "fusion")
    fusion = fusion_entry.build(fusion_options, {n: e.output_dim for n, e in sorted(encoders.items())})
    head = HEADS.get(task.name)(
        fusion.output_dim, task.output_dim, config.head.hidden_dim, config.head.dropout
    )
    return MultimodalModel(encoders, fusion, head)
