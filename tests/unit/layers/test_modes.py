"""evaluating: eval mode inside the block, the module's own mode back afterwards, also after an error."""

from __future__ import annotations

import pytest
from torch import nn

from omnifuse.layers.modes import evaluating


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_comes_back_after_the_block_and_after_an_error(training: bool) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with evaluating(model) as inside:
        assert inside is model and not model.training and not model[1].training
    assert model.training is training and model[1].training is training
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        raise RuntimeError("boom")
    assert model.training is training
