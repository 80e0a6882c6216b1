"""The configuration: typed sections (``sections``), their building blocks (``base``), typed parsing with
ranges (``parsing``) and the value checks (``checks``). ``Config.from_yaml`` parses and checks a file once.

The public names are re-exported here: ``from omnifuse.config import Config`` is what users write.
"""

from omnifuse.config.base import DEFAULT_ENCODERS, MEDIA_TYPES, TABULAR_INPUT, TABULAR_TYPES, ComponentConfig
from omnifuse.config.sections import (
    BaselineConfig,
    ColumnConfig,
    Config,
    ContrastiveConfig,
    DataConfig,
    GenerationConfig,
    HeadConfig,
    LabelConfig,
    TrainingConfig,
    override_training,
    replace,
)

__all__ = [
    "DEFAULT_ENCODERS",
    "MEDIA_TYPES",
    "TABULAR_INPUT",
    "TABULAR_TYPES",
    "BaselineConfig",
    "ColumnConfig",
    "ComponentConfig",
    "Config",
    "ContrastiveConfig",
    "GenerationConfig",
    "DataConfig",
    "HeadConfig",
    "LabelConfig",
    "TrainingConfig",
    "override_training",
    "replace",
]
