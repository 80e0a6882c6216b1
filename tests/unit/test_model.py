"""Unit tests of MultimodalModel (composition) and run_model (inference), with stand-in modules."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnifuse.data.collate import Batch
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.fusion.base import Fusion
from omnifuse.model import MultimodalModel
from omnifuse.training.batched_forward import run_model


class Scale(Encoder):
    """pooled = factor * x."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))
        self.output_dim = 2

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(pooled=inputs["x"] * self.factor)


class SumPresent(Fusion):
    """Sum of the pooled vectors of present inputs; records the call order."""

    def __init__(self) -> None:
        super().__init__()
        self.output_dim = 2
        self.seen: list[str] = []

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        self.seen = list(features)
        total = torch.zeros_like(next(iter(features.values())).pooled)
        for name, out in features.items():
            total = total + out.pooled * presence[name].unsqueeze(-1).to(out.pooled.dtype)
        return total


def _model() -> MultimodalModel:
    head = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    return MultimodalModel({"text": Scale(2.0), "image": Scale(10.0)}, SumPresent(), head)


def _inputs() -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor]]:
    inputs = {
        "text": {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]])},
        "image": {"x": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
    }
    presence = {"text": torch.tensor([True, True]), "image": torch.tensor([True, False])}
    return inputs, presence


def test_encoders_are_sorted_by_name() -> None:
    model = _model()
    assert list(model.encoders) == ["image", "text"]
    model.embed(*_inputs())
    assert model.fusion.seen == ["image", "text"]  # type: ignore[union-attr]


def test_encode_runs_each_encoder_on_its_inputs() -> None:
    outputs = _model().encode(_inputs()[0])
    torch.testing.assert_close(outputs["text"].pooled, torch.tensor([[2.0, 4.0], [6.0, 8.0]]))
    torch.testing.assert_close(outputs["image"].pooled, torch.tensor([[10.0, 0.0], [0.0, 10.0]]))


def test_embed_and_forward_hand_computed() -> None:
    model = _model()
    fused = model.embed(*_inputs())
    # row 0: text 2*(1,2) + image 10*(1,0) = (12, 4); row 1: image absent -> text only 2*(3,4) = (6, 8)
    torch.testing.assert_close(fused, torch.tensor([[12.0, 4.0], [6.0, 8.0]]))
    logits = model(*_inputs())
    torch.testing.assert_close(logits, torch.tensor([[12.0, 4.0, 16.0], [6.0, 8.0, 14.0]]))


def test_parameters_are_registered() -> None:
    names = {n for n, _ in _model().named_parameters()}
    assert names == {"encoders.image.factor", "encoders.text.factor", "head.weight"}


def _batches() -> list[Batch]:
    inputs, presence = _inputs()
    first = Batch(inputs, presence, torch.tensor([0, 2]), torch.tensor([5, 9]))
    second = Batch(
        {k: {"x": v["x"][:1]} for k, v in inputs.items()},
        {k: v[1:] for k, v in presence.items()},
        torch.tensor([1]),
        torch.tensor([2]),
    )
    return [first, second]


def test_run_model_concatenates_in_order_and_restores_mode() -> None:
    model = _model()
    model.train()
    logits, targets, index = run_model(model, _batches(), torch.device("cpu"))
    assert model.training  # restored
    assert logits.shape == (3, 3)
    # third row: the first row's inputs with the image absent: text 2*(1,2) = (2, 4)
    torch.testing.assert_close(logits[2], torch.tensor([2.0, 4.0, 6.0]))
    assert targets is not None and torch.equal(targets, torch.tensor([0, 2, 1]))
    assert torch.equal(index, torch.tensor([5, 9, 2]))
    assert not logits.requires_grad


def test_run_model_embed_and_no_targets() -> None:
    model = _model().eval()
    batches = [Batch(b.inputs, b.presence, None, b.index) for b in _batches()]
    embeddings, targets, _ = run_model(model, batches, torch.device("cpu"), embed=True)
    assert targets is None
    assert embeddings.shape == (3, 2)
    torch.testing.assert_close(embeddings[0], torch.tensor([12.0, 4.0]))
    assert not model.training


def test_run_model_uses_eval_mode() -> None:
    model = MultimodalModel({"a": Scale(1.0)}, SumPresent(), nn.Dropout(0.99))
    model.train()
    batch = Batch(
        {"a": {"x": torch.ones(4, 2)}}, {"a": torch.ones(4, dtype=torch.bool)}, None, torch.arange(4)
    )
    out, _, _ = run_model(model, [batch], torch.device("cpu"))
    torch.testing.assert_close(out, torch.ones(4, 2))  # dropout off during inference


def test_aux_heads_see_each_input_alone_and_only_when_asked() -> None:
    encoders = {"a": Scale(1.0), "b": Scale(2.0)}
    double = nn.Linear(2, 2, bias=False)
    nn.init.eye_(double.weight)
    aux = {"a": nn.Identity(), "b": double}
    model = MultimodalModel(encoders, SumPresent(), nn.Identity(), aux)
    inputs = {"a": {"x": torch.tensor([[1.0, 2.0]])}, "b": {"x": torch.tensor([[3.0, 4.0]])}}
    presence = {"a": torch.tensor([True]), "b": torch.tensor([False])}
    model.eval()
    plain = model(inputs, presence)
    assert model.aux_logits == {}  # evaluation never runs them
    model.train()
    logits = model(inputs, presence)
    side = model.aux_logits
    assert torch.equal(plain, logits) and torch.equal(logits, torch.tensor([[1.0, 2.0]]))  # b is absent
    assert torch.equal(side["a"], torch.tensor([[1.0, 2.0]]))
    assert torch.equal(side["b"], torch.tensor([[6.0, 8.0]]))  # its own head sees b even where fused away
    assert set(model.state_dict()) >= {"aux_heads.b.weight"}
