"""Multilabel classification: any set of classes per row, written "a|b|c" in one cell; BCE with logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from omnifuse.errors import BadValueError, DataError, OptionError
from omnifuse.evaluation.metrics import multilabel_metrics
from omnifuse.tasks.base import MISSING_FIX, MISSING_REASON, Task, is_missing, sort_classes


class MultilabelTask(Task):
    """Each row has a set of classes; one sigmoid per class.

    Args:
        delimiter: separates the classes in one cell ("a|b"); parts are stripped, empty parts dropped.
        threshold: a class is predicted when its probability is at least this.
        balance: weight each class's positive term by negatives / positives in the training labels
            (``pos_weight`` of BCE-with-logits), for rare classes.
        classes: the classes, for a task rebuilt from its state; empty until ``fit``.
        pos_weight: per-class positive weights, for a task rebuilt from its state.
    """

    name = "multilabel"

    def __init__(
        self,
        delimiter: str = "|",
        threshold: float = 0.5,
        balance: bool = False,
        classes: Sequence[str] = (),
        pos_weight: Sequence[float] | None = None,
    ) -> None:
        if not delimiter:
            raise OptionError("the multilabel delimiter must not be empty; set label.delimiter, e.g. '|'")
        self.delimiter = delimiter
        self.threshold = float(threshold)
        self.balance = balance
        self._classes = list(classes)
        self._index = {c: i for i, c in enumerate(self._classes)}
        self._pos_weight = list(pos_weight) if pos_weight is not None else None

    def split(self, label: Any) -> list[str]:
        """The classes written in one cell: a delimiter-joined string, or a list of class names."""
        parts = label if isinstance(label, (list, tuple, np.ndarray)) else str(label).split(self.delimiter)
        return list(dict.fromkeys(s for s in (str(p).strip() for p in parts) if s))

    def fit(self, labels: Sequence[Any]) -> None:
        """Collects the sorted classes and, with ``balance``, the per-class positive weights.

        Raises:
            DataError: no class in any training label.
        """
        sets = [self.split(v) for v in labels if not is_missing(v)]
        classes = sort_classes(c for s in sets for c in s)
        if not classes:
            raise DataError(
                "the label column has no labels (every value is missing); fill in the label column "
                f"with classes separated by {self.delimiter!r}"
            )
        self._classes = classes
        self._index = {c: i for i, c in enumerate(classes)}
        if self.balance:
            positives = np.array([sum(c in s for s in sets) for c in classes], dtype=np.float64)
            self._pos_weight = ((len(sets) - positives) / np.maximum(positives, 1.0)).tolist()

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        """Missing labels, and (once fitted) labels naming a class not seen in training."""
        problems: list[tuple[int, str, str]] = []
        for i, label in enumerate(labels):
            if is_missing(label) or not self.split(label):
                problems.append((i, MISSING_REASON, MISSING_FIX))
            elif self._classes:
                unknown = [c for c in self.split(label) if c not in self._index]
                if unknown:
                    problems.append((i, *self._unknown(unknown)))
        return problems

    def _unknown(self, unknown: list[str]) -> tuple[str, str]:
        shown = ", ".join(repr(c) for c in self._classes[:20])
        more = ", ..." if len(self._classes) > 20 else ""
        return (
            f"label class(es) {', '.join(repr(u) for u in unknown)} not seen in training ({shown}{more})",
            f"drop the row, retrain with these classes, or check the delimiter ({self.delimiter!r})",
        )

    def encode(self, label: Any) -> Tensor:
        """(C,) float multi-hot vector of the classes in ``label``."""
        parts = [] if is_missing(label) else self.split(label)
        if not parts:
            raise BadValueError(MISSING_REASON, MISSING_FIX)
        unknown = [c for c in parts if c not in self._index]
        if unknown:
            raise BadValueError(*self._unknown(unknown))
        target = torch.zeros(len(self._classes))  # (C,)
        target[[self._index[c] for c in parts]] = 1.0
        return target

    @property
    def output_dim(self) -> int:
        return len(self._classes)

    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Mean binary cross-entropy of (B, C) logits against (B, C) multi-hot targets."""
        pos_weight = None
        if self._pos_weight is not None:
            pos_weight = torch.tensor(self._pos_weight, dtype=torch.float32, device=logits.device)
        loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=pos_weight)
        return {"loss": loss}

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) independent sigmoids."""
        return torch.sigmoid(logits.float())

    def decode(self, logits: Tensor) -> list[Any]:
        """Per row, the delimiter-joined classes whose probability is at least ``threshold`` ("" if none)."""
        chosen = (self.probabilities(logits) >= self.threshold).tolist()
        return [
            self.delimiter.join(c for c, on in zip(self._classes, row, strict=True) if on) for row in chosen
        ]

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """See ``omnifuse.evaluation.metrics.multilabel_metrics``."""
        probabilities = self.probabilities(logits.detach().cpu()).numpy()
        return multilabel_metrics(targets.detach().cpu().numpy(), probabilities, self.classes, self.threshold)

    @property
    def classes(self) -> list[Any]:
        return list(self._classes)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "delimiter": self.delimiter,
            "threshold": self.threshold,
            "balance": self.balance,
            "classes": list(self._classes),
            "pos_weight": self._pos_weight,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MultilabelTask:
        return cls(
            delimiter=state["delimiter"],
            threshold=state["threshold"],
            balance=state["balance"],
            classes=state["classes"],
            pos_weight=state["pos_weight"],
        )

    def default_monitor(self) -> tuple[str, str]:
        return ("macro_f1", "max")
