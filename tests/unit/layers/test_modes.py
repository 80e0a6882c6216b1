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


def test_each_submodule_gets_its_own_mode_back() -> None:
    frozen, head = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), nn.Dropout(0.5)
    model = nn.Sequential(frozen, head).train()
    frozen.eval()  # as the trainer keeps a frozen encoder while the rest trains
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        assert not head.training
        raise RuntimeError("boom")
    assert model.training and head.training and not frozen.training and not frozen[1].training


def test_run_model_restores_the_modes_when_the_forward_fails() -> None:
    import torch

    from omnifuse.data.collate import Batch
    from omnifuse.training.batched_forward import run_model

    class Failing(nn.Module):
        def forward(self, inputs: object, presence: object) -> torch.Tensor:
            assert not self.training
            raise RuntimeError("bad batch")

    model = Failing().train()
    batch = Batch(inputs={}, presence={}, target=None, index=torch.tensor([0]))
    with pytest.raises(RuntimeError, match="bad batch"):
        run_model(model, [batch], torch.device("cpu"))
    assert model.training
