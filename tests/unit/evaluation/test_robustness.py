"""Robustness evaluation: corruption per tensor kind, and scores with an input missing or corrupted."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from omnifuse.data.collate import Batch
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.evaluation.robustness import (
    corrupt_float,
    corrupt_ids,
    corrupt_input,
    corrupt_pixels,
    is_structure,
    robustness_logits,
    robustness_scores,
)
from omnifuse.fusion.base import Fusion
from omnifuse.model import MultimodalModel
from omnifuse.tasks.classification import ClassificationTask


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- corruption ---------------------------------------------------------------------------------
def test_float_noise_has_the_tensors_own_spread_and_keeps_shape_and_dtype() -> None:
    x = torch.randn(64, 40, 8) * 3.0 + 5.0
    noisy = corrupt_float(x, gen())
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    assert (noisy - x).std().item() == pytest.approx(x.std().item(), rel=0.05)
    assert corrupt_float(x.double(), gen()).dtype == torch.float64


def test_float_noise_on_a_constant_tensor_changes_nothing() -> None:
    x = torch.full((4, 3), 2.5)
    assert torch.equal(corrupt_float(x, gen()), x)


def test_pixels_stay_uint8_in_range_with_noise_of_std_64() -> None:
    pixels = torch.full((16, 1, 32, 32), 128, dtype=torch.uint8)
    noisy = corrupt_pixels(pixels, gen())
    assert noisy.dtype == torch.uint8 and noisy.shape == pixels.shape
    diff = noisy.float() - 128.0
    assert diff.std().item() == pytest.approx(64.0, rel=0.05)
    assert int(corrupt_pixels(torch.full((2, 8, 8), 250, dtype=torch.uint8), gen()).max()) <= 255


def test_ids_replace_about_30_percent_of_real_tokens_within_the_seen_range() -> None:
    ids = torch.randint(5, 50, (200, 30))
    ids[:, 20:] = 0  # padding
    noisy = corrupt_ids(ids, gen())
    assert noisy.dtype == ids.dtype and noisy.shape == ids.shape
    assert torch.equal(noisy[:, 20:], ids[:, 20:])  # padding untouched
    changed = (noisy[:, :20] != ids[:, :20]).float().mean().item()
    assert 0.22 < changed < 0.32  # 30% drawn, a few draws land on the same id
    assert int(noisy[:, :20].min()) >= int(ids[:, :20].min())
    assert int(noisy[:, :20].max()) <= int(ids[:, :20].max())


def test_ids_per_column_stay_in_each_columns_vocabulary() -> None:
    ids = torch.stack([torch.randint(2, 4, (500,)), torch.randint(2, 40, (500,))], dim=1)  # (B, 2)
    ids[:10, 0] = 0  # missing category
    noisy = corrupt_ids(ids, gen(), per_column=True)
    assert int(noisy[:, 0].max()) <= 3 and int(noisy[10:, 0].min()) >= 2
    assert torch.equal(noisy[:10, 0], ids[:10, 0])
    assert (noisy[:, 1] != ids[:, 1]).any()


def test_ids_with_no_real_token_are_returned_unchanged() -> None:
    ids = torch.zeros(3, 4, dtype=torch.long)
    assert torch.equal(corrupt_ids(ids, gen(), per_column=True), ids)


def test_corrupt_input_leaves_masks_alone_and_uses_the_attention_mask() -> None:
    text = {
        "input_ids": torch.tensor([[7, 8, 9, 3], [4, 5, 0, 0]] * 50),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]] * 50),
    }
    noisy = corrupt_input(text, gen())
    assert noisy["attention_mask"] is text["attention_mask"]
    assert torch.equal(noisy["input_ids"][1::2, 2:], text["input_ids"][1::2, 2:])  # padding kept
    assert (noisy["input_ids"] != text["input_ids"]).any()
    audio = {"mel": torch.randn(4, 10, 8), "mask": torch.ones(4, 10, dtype=torch.bool)}
    tabular = {"numeric": torch.randn(4, 2), "numeric_missing": torch.zeros(4, 2),
               "categorical": torch.tensor([[2, 3]] * 4)}
    assert corrupt_input(audio, gen())["mask"] is audio["mask"]
    noisy_tab = corrupt_input(tabular, gen())
    assert noisy_tab["numeric_missing"] is tabular["numeric_missing"]
    assert noisy_tab["categorical"].dtype == torch.long
    assert not torch.equal(noisy_tab["numeric"], tabular["numeric"])


@pytest.mark.parametrize(("name", "tensor", "expected"), [
    ("mask", torch.ones(2, 3), True),
    ("attention_mask", torch.ones(2, 3, dtype=torch.long), True),
    ("numeric_missing", torch.zeros(2, 3), True),
    ("frames", torch.ones(2, 3, dtype=torch.bool), True),
    ("pixels", torch.zeros(2, 3, dtype=torch.uint8), False),
    ("input_ids", torch.zeros(2, 3, dtype=torch.long), False),
])
def test_structure_tensors(name: str, tensor: Tensor, expected: bool) -> None:
    assert is_structure(name, tensor) is expected


# -- scores on a tiny model ---------------------------------------------------------------------
class Scale(Encoder):
    """pooled = factor * x."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))
        self.output_dim = 2

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(pooled=inputs["x"] * self.factor)


class SumPresent(Fusion):
    """Sum of the pooled vectors of present inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.output_dim = 2

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        total = torch.zeros_like(next(iter(features.values())).pooled)
        for name, out in features.items():
            total = total + out.pooled * presence[name].unsqueeze(-1).to(out.pooled.dtype)
        return total


def _setup() -> tuple[MultimodalModel, list[Batch], ClassificationTask]:
    """Logits = 10 * signal.x + 0 * noise.x: the model depends on 'signal' only; 'extra' has no encoder."""
    model = MultimodalModel({"signal": Scale(10.0), "noise": Scale(0.0)}, SumPresent(), nn.Identity())
    task = ClassificationTask("binary")
    task.fit([0, 1])
    targets = torch.tensor([0, 1] * 20)
    signal = torch.nn.functional.one_hot(targets, 2).float() + 0.05 * torch.randn(40, 2)
    batches = []
    for start in (0, 20):
        rows = slice(start, start + 20)
        inputs = {"signal": {"x": signal[rows]}, "noise": {"x": torch.randn(20, 2)},
                  "extra": {"x": torch.randn(20, 2)}}
        presence = {n: torch.ones(20, dtype=torch.bool) for n in inputs}
        batches.append(Batch(inputs, presence, targets[rows], torch.arange(start, start + 20)))
    return model, batches, task


def test_missing_the_input_the_model_depends_on_lowers_the_score() -> None:
    model, batches, task = _setup()
    result = robustness_logits(model, batches, ["extra", "noise", "signal"])
    scores = robustness_scores(result, task, "accuracy")
    assert set(scores) == {f"{k}_{n}" for k in ("missing", "corrupted") for n in ("extra", "noise", "signal")}
    assert task.metrics(result.clean, result.targets)["accuracy"] == 1.0
    assert scores["missing_signal"] == 0.5  # all-zero logits: every row predicted class 0
    assert scores["missing_noise"] == 1.0 and scores["corrupted_noise"] == 1.0
    assert scores["corrupted_signal"] < 1.0  # noise as strong as the signal's spread flips some rows
    assert torch.equal(result.missing["extra"], result.clean)  # no encoder: nothing changes
    assert torch.equal(result.corrupted["extra"], result.clean)


def test_corruption_is_the_same_for_every_model_and_restores_training_mode() -> None:
    model, batches, _ = _setup()
    model.train()
    first = robustness_logits(model, batches, ["signal"], seed=3)
    second = robustness_logits(model, batches, ["signal"], seed=3)
    assert torch.equal(first.corrupted["signal"], second.corrupted["signal"])
    assert model.training


def test_robustness_needs_labelled_batches() -> None:
    model, batches, _ = _setup()
    unlabelled = Batch(batches[0].inputs, batches[0].presence, None, batches[0].index)
    with pytest.raises(ValueError, match="at least one batch, each with targets"):
        robustness_logits(model, [unlabelled], ["signal"])
    with pytest.raises(ValueError, match="at least one batch"):
        robustness_logits(model, [], ["signal"])
