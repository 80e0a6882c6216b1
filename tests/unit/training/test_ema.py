"""WeightEMA: the average follows the weights, warms up, swaps in and out, and round-trips its state."""

from __future__ import annotations

import torch
from torch import nn

from omnifuse.training.ema import WeightEMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_update_moves_the_average_by_the_warmed_up_decay() -> None:
    model = _model()
    ema = WeightEMA(model, decay=0.99)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)  # first update: decay min(0.99, 2/11)
    decay = 2.0 / 11.0
    expected = start * decay + (start + 1.0) * (1 - decay)
    assert torch.allclose(ema.shadow["0.weight"], expected)


def test_applied_swaps_the_average_in_and_the_weights_back() -> None:
    model = _model()
    ema = WeightEMA(model, decay=0.5)
    own = model[0].weight.detach().clone()
    ema.shadow["0.weight"].fill_(7.0)
    with ema.applied(model):
        assert torch.all(model[0].weight == 7.0)
    assert torch.equal(model[0].weight, own)


def test_buffers_are_averaged_and_integer_buffers_left_out() -> None:
    model = _model()
    ema = WeightEMA(model, decay=0.9)
    assert "1.running_mean" in ema.shadow and "1.num_batches_tracked" not in ema.shadow
    model.train()
    model(torch.randn(8, 3) + 5.0)  # moves the running mean
    ema.update(model)
    assert not torch.equal(ema.shadow["1.running_mean"], torch.zeros(2))


def test_state_round_trip() -> None:
    model = _model()
    ema = WeightEMA(model, decay=0.9)
    for _ in range(3):
        with torch.no_grad():
            model[0].weight.add_(0.1)
        ema.update(model)
    other = WeightEMA(_model(), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3
    assert all(torch.equal(other.shadow[k], v) for k, v in ema.shadow.items())


def test_update_reads_channels_last_weights_without_state_dict_copies() -> None:
    from omnifuse.encoders.base import use_channels_last

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    use_channels_last(model, True)
    ema = WeightEMA(model, 0.5)
    calls = []
    model.register_state_dict_post_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    assert calls == []  # the live tensors, not a state_dict() with its copies
    warmed = min(0.5, 2 / 11)
    expected = model[0].weight.detach() - warmed  # start * decay + (start + 1) * (1 - decay)
    assert torch.allclose(ema.shadow["0.weight"], expected, atol=1e-6)
    assert ema.shadow["0.weight"].is_contiguous()
