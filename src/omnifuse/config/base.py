"""The config's building blocks that its checks need without the whole Config: the column types, the media
types and their default encoders, the shared tabular input, and ComponentConfig (a registry pick)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from omnifuse.config.parsing import ParsedOptions

ColumnType = Literal["text", "image", "audio", "video", "numeric", "categorical", "ignore"]
MEDIA_TYPES = ("text", "image", "audio", "video")
TABULAR_TYPES = ("numeric", "categorical")
TABULAR_INPUT = "tabular"  # the name under which numeric + categorical columns enter the model


@dataclass
class ComponentConfig:
    """A part picked by name from a registry (encoder, fusion), with its own options.

    In YAML it is written flat: ``encoder: {name: textcnn, embed_dim: 64, lr_mult: 0.1}``
    or just ``encoder: textcnn``.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    lr_mult: float = 1.0  # learning-rate multiplier for this part's parameters
    freeze_epochs: int = 0  # frozen for the first N epochs; -1 keeps it frozen for the whole run
    init_from: str | None = None  # a trained omnifuse model folder whose tower weights start this encoder
    init_column: str | None = None  # the tower (column) of init_from to copy; default: this column's name
    # ``options`` as the registry entry's dataclass, parsed once at load (config.binding); not YAML
    parsed: ParsedOptions | None = field(default=None, init=False, repr=False, compare=False)


DEFAULT_ENCODERS: dict[str, str] = {"text": "textcnn", "image": "small_cnn", "audio": "mfcc_stats"}
