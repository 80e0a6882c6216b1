"""Module mode helpers: run a module in eval mode for a block and put its own mode back, even on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block ``module`` (and every submodule) is in eval mode; afterwards it is back in the mode
    it had (train or eval), also when the block raises."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
