"""Early stopping on a monitored validation metric."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """Tracks the best value of a metric and how many epochs passed without improvement.

    Args:
        monitor: metric name.
        mode: "max" or "min".
        patience: epochs without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
    """

    monitor: str
    mode: str
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    best_loss: float | None = None

    def update(self, value: float, epoch: int, loss: float | None = None) -> bool:
        """Records ``value`` for ``epoch``; returns True when it is the best so far.

        A tie on ``value`` (common for accuracy on small validation sets) is broken by a lower ``loss``.
        """
        if math.isnan(value):
            self.bad_epochs += 1
            return False
        better = self.best is None or (
            value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta
        )
        tie_won = (
            self.best is not None
            and value == self.best
            and loss is not None
            and self.best_loss is not None
            and loss < self.best_loss
        )
        if better or tie_won:
            self.best, self.best_epoch, self.best_loss = value, epoch, loss
            self.bad_epochs = 0 if better else self.bad_epochs + 1
        else:
            self.bad_epochs += 1
        return better or tie_won

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.bad_epochs >= self.patience

    def reason(self) -> str:
        """Why training stopped early, for the log."""
        if self.best is None:
            return f"early stopping: {self.monitor} was NaN for {self.bad_epochs} epoch(s); lower training.lr"
        return (
            f"early stopping: {self.monitor} did not improve for {self.bad_epochs} epoch(s) "
            f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain values for the checkpoint."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores ``state_dict``."""
        for key, value in state.items():
            setattr(self, key, value)
