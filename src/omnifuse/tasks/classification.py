"""Single-label classification: binary (two classes) and multiclass, with cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from omnifuse.errors import BadValueError, DataError, ModelDirError
from omnifuse.evaluation.metrics import classification_metrics
from omnifuse.tasks.base import (
    MISSING_FIX,
    MISSING_REASON,
    Task,
    class_lookup,
    find_class,
    is_missing,
    plain_label,
    sort_classes,
)


class ClassificationTask(Task):
    """One class per row; the head produces one logit per class and the loss is cross-entropy.

    Binary is the two-class case: two logits, softmax, and ``classes[1]`` is the positive class (the one
    whose ROC AUC is reported).

    Args:
        name: "binary" (exactly two classes) or "multiclass" (two or more).
        classes: the classes in index order, for a task rebuilt from its state; empty until ``fit``.
        temperature: the probabilities are ``softmax(logits / temperature)``; training fits it on the
            validation rows (``training.calibrate``); 1.0 is the plain softmax.
    """

    def __init__(
        self, name: Literal["binary", "multiclass"] = "multiclass", classes: Sequence[Any] = (),
        temperature: float = 1.0,
    ) -> None:
        assert name in ("binary", "multiclass"), name
        assert temperature > 0, temperature
        self.name = name
        self.temperature = float(temperature)
        self.label_smoothing = 0.0  # training only (training.label_smoothing); not part of the saved state
        self._classes: list[Any] = [plain_label(c) for c in classes]
        self._index = class_lookup(self._classes)

    def fit(self, labels: Sequence[Any]) -> None:
        """Collects the sorted classes of the non-missing training labels.

        Raises:
            DataError: fewer than two classes (or, for binary, more than two).
        """
        classes = sort_classes(plain_label(v) for v in labels if not is_missing(v))
        if not classes:
            raise DataError(
                "the label column has no labels (every value is missing); fill in the label column"
            )
        if len(classes) < 2:
            raise DataError(
                f"the label column has only one class {classes[0]!r} in the training rows; a classifier "
                "needs at least two classes: check the label column or choose task: regression"
            )
        if self.name == "binary" and len(classes) > 2:
            raise DataError(
                f"task: binary but the label column has {len(classes)} classes "
                f"({', '.join(repr(c) for c in classes[:10])}); choose task: multiclass"
            )
        self._classes = classes
        self._index = class_lookup(classes)

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        """Missing labels, and (once fitted) labels that are not a class seen in training."""
        problems: list[tuple[int, str, str]] = []
        for i, label in enumerate(labels):
            if is_missing(label):
                problems.append((i, MISSING_REASON, MISSING_FIX))
            elif self._classes and find_class(label, self._index) is None:
                problems.append((i, *self._unknown(label)))
        return problems

    def _unknown(self, label: Any) -> tuple[str, str]:
        shown = ", ".join(repr(c) for c in self._classes[:20])
        more = ", ..." if len(self._classes) > 20 else ""
        return (
            f"label {label!r} is not one of the classes seen in training ({shown}{more})",
            "drop the row, or retrain with this class in the training table",
        )

    def encode(self, label: Any) -> Tensor:
        """The class index of ``label`` as a long scalar; ``"3"`` and ``3`` find the same class."""
        if is_missing(label):
            raise BadValueError(MISSING_REASON, MISSING_FIX)
        index = find_class(label, self._index)
        if index is None:
            raise BadValueError(*self._unknown(label))
        return torch.tensor(index, dtype=torch.long)

    @property
    def output_dim(self) -> int:
        return len(self._classes)

    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Cross-entropy of (B, C) logits against (B,) class indices (with ``label_smoothing``)."""
        return {"loss": F.cross_entropy(logits.float(), targets.long(), label_smoothing=self.label_smoothing)}

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) softmax of the logits divided by the task's temperature (calibrated probabilities)."""
        return torch.softmax(logits.float() / self.temperature, dim=-1)

    def decode(self, logits: Tensor) -> list[Any]:
        """The most likely class of each row, in the label's own values."""
        return [self._classes[i] for i in logits.argmax(dim=-1).tolist()]

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """See ``omnifuse.evaluation.metrics.classification_metrics``."""
        probabilities = self.probabilities(logits.detach().cpu()).numpy()
        return classification_metrics(
            targets.detach().cpu().long().numpy(), probabilities, [str(c) for c in self._classes]
        )

    @property
    def classes(self) -> list[Any]:
        return list(self._classes)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"name": self.name, "classes": list(self._classes)}
        if self.temperature != 1.0:  # left out when uncalibrated: folders saved before calibration read 1.0
            state["temperature"] = self.temperature
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClassificationTask:
        """Raises ModelDirError for a temperature that is not a positive finite number."""
        temperature = state.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
                0 < temperature < math.inf):
            raise ModelDirError(f"the task's temperature must be a positive number, got {temperature!r}: the "
                                "model folder is damaged; retrain it or copy it again")
        return cls(name=state["name"], classes=state["classes"], temperature=float(temperature))

    def default_monitor(self) -> tuple[str, str]:
        return ("accuracy", "max")
