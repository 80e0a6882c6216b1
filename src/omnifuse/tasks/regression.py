"""Regression of one number per row: MSE on standardised targets, metrics on the label's own scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from omnifuse.errors import BadValueError, DataError
from omnifuse.evaluation.metrics import regression_metrics
from omnifuse.tasks.base import MISSING_FIX, MISSING_REASON, Task, is_missing

NOT_NUMBER_FIX = "write a number in the label column, or choose task: multiclass"


def to_number(label: Any) -> float | None:
    """The label as a finite float (numbers or numeric text such as "3.5"), or None."""
    if isinstance(label, (bool, np.bool_)):
        return None
    try:
        value = float(label.strip() if isinstance(label, str) else label)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class RegressionTask(Task):
    """Predicts one number; the head's single output is the standardised target ``(y - mean) / std``.

    Args:
        mean: the training targets' mean, for a task rebuilt from its state.
        std: the training targets' standard deviation (1 when they are constant).
    """

    name = "regression"

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = float(mean)
        self.std = float(std)

    def fit(self, labels: Sequence[Any]) -> None:
        """Mean and standard deviation of the numeric training labels (non-numbers are ignored).

        Raises:
            DataError: no numeric label at all.
        """
        values = [v for v in (to_number(x) for x in labels) if v is not None]
        if not values:
            sample = next((x for x in labels if not is_missing(x)), None)
            raise DataError(
                f"task: regression but the label column has no numbers (e.g. {sample!r}); "
                "fix the label column or choose task: multiclass"
            )
        array = np.asarray(values, dtype=np.float64)
        self.mean = float(array.mean())
        std = float(array.std())
        self.std = std if std > 1e-12 else 1.0

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        """Missing labels and labels that are not finite numbers."""
        problems: list[tuple[int, str, str]] = []
        for i, label in enumerate(labels):
            if is_missing(label):
                problems.append((i, MISSING_REASON, MISSING_FIX))
            elif to_number(label) is None:
                problems.append((i, f"label {label!r} is not a finite number", NOT_NUMBER_FIX))
        return problems

    def encode(self, label: Any) -> Tensor:
        """(1,) float standardised target."""
        if is_missing(label):
            raise BadValueError(MISSING_REASON, MISSING_FIX)
        value = to_number(label)
        if value is None:
            raise BadValueError(f"label {label!r} is not a finite number", NOT_NUMBER_FIX)
        return torch.tensor([(value - self.mean) / self.std], dtype=torch.float32)

    def destandardise(self, values: Tensor) -> Tensor:
        """Standardised values (model outputs or encoded targets) back on the label's own scale."""
        return values.float() * self.std + self.mean

    @property
    def output_dim(self) -> int:
        return 1

    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """MSE between (B, 1) outputs and (B, 1) standardised targets."""
        return {"loss": F.mse_loss(logits.float().reshape(-1), targets.float().reshape(-1))}

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, 1) predictions on the label's own scale."""
        return self.destandardise(logits.reshape(-1, 1))  # (B, 1)

    def decode(self, logits: Tensor) -> list[Any]:
        """Predicted numbers as floats."""
        return [float(v) for v in self.probabilities(logits).reshape(-1).tolist()]

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """RMSE, MAE and R² on the label's own scale; ``targets`` are the encoded (standardised) ones."""
        predictions = self.probabilities(logits.detach().cpu()).reshape(-1).numpy()
        truth = self.destandardise(targets.detach().cpu()).reshape(-1).numpy()
        return regression_metrics(truth, predictions)

    @property
    def classes(self) -> list[Any]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionTask:
        return cls(mean=state["mean"], std=state["std"])

    def default_monitor(self) -> tuple[str, str]:
        return ("rmse", "min")
