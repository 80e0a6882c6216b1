"""The task contract: label encoding, loss terms, probabilities, decoding and metrics for one task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

MISSING_REASON = "the label is missing (None, NaN or empty)"
MISSING_FIX = "fill in the label or set data.on_bad_row: skip"


class Task(ABC):
    """What the model is trained to do: turns labels into targets and logits into losses and answers.

    The model never computes its own loss: the training loop calls ``loss`` and the evaluation calls
    ``metrics`` on the logits of the whole set at once. A task is fitted on the training labels and its
    state is JSON (``state_dict``), rebuilt by ``omnifuse.tasks.task_from_state``.
    """

    name: str  # "binary" | "multiclass" | "multilabel" | "regression"

    @abstractmethod
    def fit(self, labels: Sequence[Any]) -> None:
        """Learns the classes (or the target mean/std) from the training labels; missing ones are ignored.

        Raises:
            DataError: the labels cannot support the task (one class, no numbers, ...).
        """

    @abstractmethod
    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        """``(index, reason, fix)`` for every unusable label; the caller makes row errors or skips them."""

    @abstractmethod
    def encode(self, label: Any) -> Tensor:
        """The target of one row (class index, multi-hot vector or standardised value).

        Raises:
            BadValueError: the label is unusable (see ``check_labels``).
        """

    @property
    @abstractmethod
    def output_dim(self) -> int:
        """Number of logits the head must produce per row."""

    @abstractmethod
    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Named loss terms; ``"loss"`` is the total that is back-propagated."""

    @abstractmethod
    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) class probabilities; regression: (B, 1) predictions on the label's own scale."""

    @abstractmethod
    def decode(self, logits: Tensor) -> list[Any]:
        """Predictions in the label's own values (class names, delimiter-joined class sets, floats)."""

    @abstractmethod
    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """JSON-able metrics of a whole set (plain floats/ints/lists, None where undefined)."""

    @property
    @abstractmethod
    def classes(self) -> list[Any]:
        """The classes in index order; [] for regression."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state, with ``"name"``; ``task_from_state`` rebuilds an equal task from it."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Task:
        """Rebuilds a fitted task from ``state_dict()`` output."""

    def save_assets(self, folder: Path) -> None:
        """Writes files the state does not hold (a pretrained tokenizer) into ``folder``; most tasks: none."""

    def load_assets(self, folder: Path) -> None:
        """Reads what ``save_assets`` wrote, after ``from_state``."""

    def training_state(self) -> dict[str, Any]:
        """What the task accumulates while training (tensors and plain values) for the training checkpoint,
        e.g. the contrastive queues; not part of the model folder. {} for most tasks."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restores ``training_state()`` output when a run resumes."""

    @abstractmethod
    def default_monitor(self) -> tuple[str, str]:
        """(validation metric, "max" | "min") that early stopping watches by default."""

    def monitor(self, setting: str = "auto") -> tuple[str, str]:
        """(metric, "max" | "min") that early stopping, tuning and ensembles watch for ``training.monitor``:
        the task's default for ``auto``, else the named metric with its direction (decided here only)."""
        metric, mode = self.default_monitor()
        if setting in ("auto", metric):
            return metric, mode
        return setting, metric_mode(setting)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.state_dict() == other.state_dict()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.state_dict()!r})"


def metric_mode(metric: str) -> str:
    """"min" for a metric where lower is better (losses, errors, hamming loss), else "max"."""
    return "min" if any(word in metric for word in ("loss", "rmse", "mae", "hamming")) else "max"


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA/NaT and blank strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) == 0
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def plain_label(value: Any) -> Any:
    """A JSON-safe label: numpy scalars unwrapped, integral floats as int, strings stripped.

    Integral floats become ints because pandas turns an int column with a missing cell into floats;
    ``1.0`` and ``1`` must be the same class.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


def sort_classes(values: Iterable[Any]) -> list[Any]:
    """Sorted classes: numbers numerically, strings alphabetically, mixed types by their text."""
    unique = list(dict.fromkeys(values))
    numeric = all(isinstance(v, (int, float)) for v in unique)
    if numeric or all(isinstance(v, str) for v in unique):
        return sorted(unique)
    return sorted(unique, key=str)


def class_lookup(classes: list[Any]) -> dict[str, int]:
    """Index of each class by its text form, so that ``"3"`` read from a CSV finds class ``3``.

    Text keys also keep ``True`` and ``1`` apart, which a dict of the values themselves would merge.
    """
    index: dict[str, int] = {}
    for i, c in enumerate(classes):
        index.setdefault(str(c), i)
    return index


def find_class(label: Any, index: dict[str, int]) -> int | None:
    """Index of ``label`` among the classes, or None when it is not a known class."""
    return index.get(str(plain_label(label)))
