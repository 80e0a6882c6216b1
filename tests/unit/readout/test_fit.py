"""Fitting the read-out on a model: a read-out that sees every input gets the configured weight and lifts
a head that misses the signal; beside another input, its weight is earned on validation."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from torch import Tensor, nn

from omnifuse.config.sections import ReadoutConfig
from omnifuse.data.collate import Example
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.model import MultimodalModel
from omnifuse.readout.fit import fit_readout
from omnifuse.readout.module import LinearReadout, ReadoutInput


def _noise(x: Tensor) -> Tensor:
    """Noise of x's shape, the same for the same x."""
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(int(x.abs().sum() * 1000) % 997))


class Summary(Encoder):
    """Pooled output: the features (or noise: ``useless``); linear features: the features (or noise:
    ``useless_linear``)."""

    linear_dim = 4

    def __init__(self, useless: bool, useless_linear: bool = False) -> None:
        super().__init__()
        self.useless, self.useless_linear, self.output_dim = useless, useless_linear, 4
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        x = inputs["x"]  # (B, 4)
        return EncoderOutput((_noise(x) if self.useless else x) * self.scale, None, None)

    def linear_features(self, inputs: dict[str, Tensor]) -> Tensor:
        return _noise(inputs["x"]) if self.useless_linear else inputs["x"]


def _examples(n: int, seed: int) -> list[Example]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()  # a linear rule of the features
    return [Example(i, {"audio": {"x": x[i]}, "other": {"x": x[i]}}, {"audio": True, "other": True}, y[i])
            for i in range(n)]


class Other(Encoder):
    """An input without linear features (the fusion below ignores it)."""

    output_dim = 4

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(torch.zeros(inputs["x"].shape[0], 4), None, None)


def _model(useless: bool, useless_linear: bool = False, other: bool = False) -> MultimodalModel:
    encoders: dict[str, Encoder] = {"audio": Summary(useless, useless_linear)}
    if other:
        encoders["other"] = Other()
    head = nn.Linear(4, 2)
    with torch.no_grad():  # a head that reads the rule (from the real features)
        head.weight.copy_(torch.tensor([[-4.0, -2.0, 0, 0], [4.0, 2.0, 0, 0]]))
        head.bias.zero_()
    return MultimodalModel(encoders, _Identity(), head, readout=LinearReadout({"audio": ReadoutInput(4)}, 2))


class _Identity(nn.Module):
    output_dim = 4

    def forward(self, encoded: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        return encoded["audio"].pooled


def _accuracy(model: MultimodalModel, examples: list[Example]) -> float:
    model.eval()
    x = torch.stack([e.inputs["audio"]["x"] for e in examples])
    present = torch.ones(len(examples), dtype=torch.bool)
    logits = model({"audio": {"x": x}, "other": {"x": x}}, {"audio": present, "other": present})
    return float((logits.argmax(1) == torch.stack([e.target for e in examples])).float().mean())


def test_a_readout_of_every_input_gets_the_configured_weight_and_lifts_a_poor_head() -> None:
    model = _model(useless=True)
    train, valid = _examples(300, 0), _examples(100, 1)
    before = _accuracy(model, valid)
    fit_readout(model, train, valid, ReadoutConfig(weight=0.8), 0, Console(quiet=True))
    assert model.readout is not None and bool(model.readout.fitted)
    assert float(model.readout.blend) == pytest.approx(0.8)
    assert before < 0.7 and _accuracy(model, valid) > 0.8


def test_beside_another_input_a_readout_that_helps_earns_a_large_weight() -> None:
    model = _model(useless=True, other=True)
    fit_readout(model, _examples(300, 0), _examples(100, 1), ReadoutConfig(), 0, Console(quiet=True))
    assert float(model.readout.blend) >= 0.5  # type: ignore[union-attr]
    assert _accuracy(model, _examples(100, 1)) > 0.8


def test_beside_another_input_a_useless_readout_gets_little_weight() -> None:
    model = _model(useless=False, useless_linear=True, other=True)
    train, valid = _examples(300, 0), _examples(100, 1)
    fit_readout(model, train, valid, ReadoutConfig(), 0, Console(quiet=True))
    assert float(model.readout.blend) <= 0.25  # type: ignore[union-attr]
    assert _accuracy(model, valid) > 0.95


def test_too_few_validation_rows_leave_it_unfitted() -> None:
    model = _model(useless=True)
    fit_readout(model, _examples(100, 0), _examples(10, 1), ReadoutConfig(), 0, Console(quiet=True))
    assert not bool(model.readout.fitted)  # type: ignore[union-attr]


def test_a_large_table_fits_on_a_seeded_sample_of_max_rows() -> None:
    model = _model(useless=True)
    options = ReadoutConfig(max_rows=40)
    fit_readout(model, _examples(300, 0), _examples(100, 1), options, 0, Console(quiet=True))
    assert model.readout is not None and bool(model.readout.fitted)
    assert _accuracy(model, _examples(100, 1)) > 0.7  # 40 rows still find the rule


class Counts(Encoder):
    """Linear features: sparse non-negative counts whose first column carries the label."""

    linear_dim, linear_sparse, output_dim = 50, True, 4

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(_noise(inputs["x"]), None, None)

    def linear_features(self, inputs: dict[str, Tensor]) -> Tensor:
        x = inputs["x"]  # (B, 4)
        out = torch.zeros(x.shape[0], self.linear_dim)
        out[:, 0] = (x[:, 0] + 0.5 * x[:, 1] > 0).float()  # the rule, as a count
        rows = torch.arange(x.shape[0])
        out[rows, 1 + rows % 49] = 1.0  # one other term per row
        return out


def test_a_sparse_input_is_fitted_from_sparse_rows_and_block_scaled() -> None:
    readout = LinearReadout({"audio": ReadoutInput(50, sparse=True)}, 2)
    model = MultimodalModel({"audio": Counts()}, _Identity(), nn.Linear(4, 2), readout=readout)
    fit_readout(model, _examples(300, 0), _examples(100, 1), ReadoutConfig(), 0, Console(quiet=True))
    assert bool(readout.fitted) and "audio" not in readout.scales  # not centred per feature
    # rows hold one or two ones: mean energy 1.5 on the training rows, so the block scale is 1 / sqrt(1.5)
    assert float(readout.blocks[0]) == pytest.approx(1.5 ** -0.5, rel=0.1)
    assert _accuracy(model, _examples(100, 1)) > 0.8


def test_a_readout_of_every_input_clearly_worse_than_the_head_must_earn_its_share() -> None:
    model = _model(useless=False, useless_linear=True)  # the head reads the rule, the read-out noise
    fit_readout(model, _examples(300, 0), _examples(100, 1), ReadoutConfig(), 0, Console(quiet=True))
    assert float(model.readout.blend) <= 0.25  # type: ignore[union-attr]  # not the fixed 0.75
    assert _accuracy(model, _examples(100, 1)) > 0.95
