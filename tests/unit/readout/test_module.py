"""The linear read-out's blend: unfitted it changes nothing; fitted, each row mixes the two calibrated parts,
and a row without the read-out's inputs keeps the head alone."""

from __future__ import annotations

import torch

from omnifuse.readout.module import LinearReadout, ReadoutInput, readout_summary


def _fitted(blend: float) -> LinearReadout:
    readout = LinearReadout({"audio": ReadoutInput(3)}, classes=2)
    readout.scales["audio"].mean.copy_(torch.tensor([1.0, 0.0, 0.0]))
    readout.scales["audio"].scale.copy_(torch.tensor([0.5, 1.0, 1.0]))  # 1 / std
    readout.weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]))
    readout.temperatures.copy_(torch.tensor([2.0, 0.5]))
    readout.blend.fill_(blend)
    readout.fitted.fill_(True)
    return readout


def test_an_unfitted_readout_returns_the_head_logits_exactly() -> None:
    readout = LinearReadout({"audio": ReadoutInput(3)}, classes=2)
    head = torch.tensor([[3.0, -1.0], [0.5, 0.25]])
    out = readout(head, {"audio": torch.randn(2, 3)}, {"audio": torch.tensor([True, True])})
    assert torch.equal(out, head) and readout_summary(torch.nn.Module()) is None


def test_a_fitted_readout_blends_the_calibrated_parts_per_row() -> None:
    readout = _fitted(0.25)
    head = torch.tensor([[3.0, -1.0], [3.0, -1.0]])
    features = {"audio": torch.tensor([[5.0, 9.0, 9.0], [5.0, 9.0, 9.0]])}  # standardised: [2, 9, 9]
    out = readout(head, features, {"audio": torch.tensor([True, False])})
    linear = torch.tensor([[2.0, -2.0]]) / 0.5
    want = 0.75 * torch.log_softmax(head[:1] / 2.0, dim=1) + 0.25 * torch.log_softmax(linear, dim=1)
    torch.testing.assert_close(out[:1], want)
    # the second row has no audio: the head alone (calibrated), whatever the features hold
    torch.testing.assert_close(out[1:], torch.log_softmax(head[1:] / 2.0, dim=1))


def test_a_missing_input_reads_as_its_training_mean() -> None:
    readout = _fitted(0.5)
    features = {"audio": torch.tensor([[5.0, 1.0, 2.0]] * 2)}
    z = readout.standardised(features, {"audio": torch.tensor([True, False])})
    assert z.tolist() == [[2.0, 1.0, 2.0], [0.0, 0.0, 0.0]]


def test_the_summary_names_the_inputs_and_the_weight() -> None:
    model = torch.nn.Module()
    model.readout = _fitted(0.4)
    assert readout_summary(model) == {"inputs": ["audio"], "weight": 0.4, "temperature_head": 2.0,
                                      "temperature_readout": 0.5}
