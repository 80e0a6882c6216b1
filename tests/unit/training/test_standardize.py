"""fit_standardizers: statistics from cached features equal those of the real encoder; rows without the
input are left out; the model applies them before the fusion; streamed runs say they are not fitted."""

from __future__ import annotations

import torch
from rich.console import Console
from torch import Tensor, nn

from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.layers.standardize import FeatureStandardizer
from omnifuse.model import MultimodalModel
from omnifuse.training.feature_cache import cache_features
from omnifuse.training.standardize import fit_standardizers, standardize_for_run


class Affine(Encoder):
    """A fixed encoder with per-dimension scales far apart; tokens of the pooled width."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.output_dim = nn.Linear(2, 3), 3
        with torch.no_grad():
            self.proj.weight.copy_(torch.tensor([[0.01, 0.0], [0.0, 1.0], [5.0, 5.0]]))
            self.proj.bias.fill_(3.0)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        pooled = self.proj(inputs["x"])  # (B, 3)
        return EncoderOutput(pooled=pooled, tokens=pooled.unsqueeze(1).repeat(1, 2, 1))  # (B, 2, 3)


class Pooled(nn.Module):
    """A fusion that returns the one input's pooled vector."""

    output_dim = 3

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        return features["a"].pooled


def _rows(present: list[bool]) -> list[Example]:
    generator = torch.Generator().manual_seed(0)
    return [Example(i, {"a": {"x": torch.randn(2, generator=generator)}}, {"a": keep}, torch.tensor(0))
            for i, keep in enumerate(present)]


def _model() -> MultimodalModel:
    return MultimodalModel({"a": Affine()}, Pooled(), nn.Identity(),  # type: ignore[arg-type]
                           standardizers={"a": FeatureStandardizer(3)})


def test_cached_and_encoded_rows_give_the_same_statistics_and_absent_rows_are_left_out() -> None:
    rows = _rows([True] * 7 + [False])
    rows[-1].inputs["a"]["x"] = torch.tensor([1e3, -1e3])  # would dominate the statistics if counted
    encoded, cached = _model(), _model()
    assert fit_standardizers(encoded, rows, [], batch_size=3) == ["a"]
    stored = cache_features(cached.encoders["a"], rows, "a", batch_size=3, device="cpu")  # type: ignore[arg-type]
    assert fit_standardizers(cached, stored, ["a"], batch_size=3) == ["a"]
    first, second = encoded.standardizers["a"], cached.standardizers["a"]
    torch.testing.assert_close(first.mean, second.mean)
    torch.testing.assert_close(first.scale, second.scale)
    assert encoded.encoders["a"].training  # its mode is restored


def test_the_model_standardises_pooled_features_and_tokens_before_the_fusion() -> None:
    rows = _rows([True] * 16)
    model = _model()
    fit_standardizers(model, rows, [], batch_size=4)
    x = torch.stack([r.inputs["a"]["x"] for r in rows])  # (16, 2)
    with torch.no_grad():
        out = model.encode({"a": {"x": x}})["a"]
        logits = model({"a": {"x": x}}, {"a": torch.ones(16, dtype=torch.bool)})
    torch.testing.assert_close(out.pooled.std(dim=0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert out.tokens is not None
    torch.testing.assert_close(out.tokens[:, 1], out.pooled)
    torch.testing.assert_close(logits, out.pooled)


def test_no_present_row_leaves_the_identity() -> None:
    model = _model()
    assert fit_standardizers(model, _rows([False, False]), [], batch_size=2) == []
    assert torch.equal(model.standardizers["a"].scale, torch.ones(3))


def test_a_streamed_run_says_the_features_are_not_standardised() -> None:
    cfg = Config.from_dict({"label": {"column": "y", "task": "multiclass"},
                            "columns": {"a": {"type": "text"}}})
    console = Console(record=True, width=200)
    model = _model()
    standardize_for_run(cfg, model, None, [], console)
    assert "a not standardised: with data.streaming" in console.export_text()
    assert torch.equal(model.standardizers["a"].mean, torch.zeros(3))
    standardize_for_run(cfg, model, _rows([True, True, True]), [], console)
    assert "Frozen features standardised per dimension (training rows): a" in console.export_text()
