"""The preprocessor contract: one per model input, fitted on training rows, state as JSON."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor


class Preprocessor(ABC):
    """Turns one cell (or, for the tabular input, one row's tabular cells) into tensors.

    Values passed in:
      - text: ``str`` (never empty: missing cells are handled before, see ``blank``);
      - image / audio / video: a resolved ``pathlib.Path`` or raw ``bytes`` of the file;
      - tabular: ``dict[column, raw value]`` (numbers may be NaN, categories may be None).

    Output tensors are per row (no batch dim). Collate stacks them, padding dim 0 with zeros to the
    longest row, so variable-length tensors must be sequence-first and have a mask if padding matters.

    Raises:
        BadValueError: from ``__call__`` when a value cannot be used (undecodable file, ...); the caller
            adds the row and column to the message.
    """

    def fit(self, values: Sequence[Any]) -> None:
        """Learns what it needs (vocabulary, statistics) from the training rows' non-missing values."""

    @abstractmethod
    def __call__(self, value: Any) -> dict[str, Tensor]:
        """Tensors for one value."""

    @abstractmethod
    def blank(self) -> dict[str, Tensor]:
        """Tensors standing in for a missing value (the row's presence flag is False)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state that ``load_state_dict`` restores (vocabulary, statistics, options)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state written by ``state_dict``."""

    def save_assets(self, folder: Path) -> None:
        """Writes extra files (e.g. tokenizer files) into ``folder``."""

    def load_assets(self, folder: Path) -> None:
        """Reads the files written by ``save_assets``."""
