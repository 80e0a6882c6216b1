"""Module mode helpers: run a module in eval mode for a block and put its own mode back, even on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block ``module`` (and every submodule) is in eval mode; afterwards every submodule is
    back in the mode it had (a frozen encoder kept in eval inside a training model stays so), also when
    the block raises."""
    modes = [(part, part.training) for part in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for part, mode in modes:
            part.training = mode
