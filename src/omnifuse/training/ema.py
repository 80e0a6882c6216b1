"""An exponential moving average of the weights (Polyak averaging), used for validation and saving.

Small tables trained from scratch give weights that jump from step to step, and BatchNorm statistics that
follow them: validation accuracy then swings from epoch to epoch and early stopping picks a lucky epoch.
The average of the recent weights is smoother and usually better (Polyak & Juditsky 1992; the EMA of
timm, YOLO and diffusion models). Float buffers (BatchNorm running statistics) are averaged the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def live_tensors(model: nn.Module, keys: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's own parameters and buffers under their state-dict ``keys``, without copies.

    ``state_dict()`` runs its hooks, and the channels-last encoders' hook copies every conv weight into a
    contiguous tensor (what safetensors needs): once per step that is a copy of those weights per step for
    nothing. Keys that a module's own state-dict hooks rename fall back to ``state_dict()``.
    """
    tensors: dict[str, Tensor] = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers(remove_duplicate=False))
    missing = [key for key in keys if key not in tensors]
    if missing:
        state = model.state_dict()
        tensors.update({key: state[key] for key in missing})
    return tensors


class WeightEMA:
    """The averaged copy of a model's floating-point parameters and buffers.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so the first epochs are not
    dominated by the random initialisation.

    Args:
        model: the model whose state is averaged (its current values start the average).
        decay: weight of the old average at each update, in (0, 1), e.g. 0.99.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        assert 0.0 < decay < 1.0, decay
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Moves the average towards the model's current state (after an optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        state = live_tensors(model, self.shadow)
        for key, average in self.shadow.items():
            average.lerp_(state[key].detach().to(average.dtype), 1.0 - decay)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Within the block the model holds the averaged weights; its own come back afterwards."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items() if k in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield
        finally:
            model.load_state_dict(own, strict=False)

    def state_dict(self) -> dict[str, object]:
        """For the checkpoint: the averaged tensors and the update count."""
        return {"updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restores what ``state_dict`` wrote."""
        self.updates = int(state["updates"])  # type: ignore[call-overload]
        shadow = state["shadow"]
        assert isinstance(shadow, dict), type(shadow)
        for key, value in shadow.items():
            self.shadow[key].copy_(value)
