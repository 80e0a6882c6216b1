"""Unit tests of evaluation/ablation.py with stand-in encoders and fusions whose outputs are known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from omnifuse.data.collate import Batch
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.evaluation.ablation import (
    ablation_section,
    forward_variants,
    modality_ablation,
    plot_ablation,
)
from omnifuse.evaluation.report import write_report
from omnifuse.fusion.base import Fusion
from omnifuse.model import MultimodalModel
from omnifuse.tasks import make_task


class _Pass(Encoder):
    """Stand-in encoder: pooled = inputs["x"]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.output_dim = dim

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(pooled=inputs["x"], tokens=None, mask=None)


class _Sum(Fusion):
    """Stand-in fusion: sum of the present inputs; ``last_weights`` in ``input_names`` order."""

    def __init__(self, dim: int, input_names: list[str], weights: Tensor | None = None) -> None:
        super().__init__()
        self.output_dim = dim
        self.input_names = input_names
        self.fixed = weights
        self.last_weights: Tensor | None = None

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        self.last_weights = self.fixed
        return sum(features[n].pooled * presence[n].unsqueeze(1).float() for n in sorted(features))  # type: ignore[return-value]


def _model(dim: int, weights: Tensor | None = None, names: list[str] | None = None) -> MultimodalModel:
    encoders: dict[str, Any] = {"a": _Pass(dim), "b": _Pass(dim)}
    return MultimodalModel(encoders, _Sum(dim, names or ["a", "b"], weights), nn.Identity())


def _batch(a: Tensor, b: Tensor, target: Tensor, present_b: list[bool] | None = None) -> Batch:
    rows = a.shape[0]
    presence = {"a": torch.ones(rows, dtype=torch.bool), "b": torch.tensor(present_b or [True] * rows)}
    return Batch({"a": {"x": a}, "b": {"x": b}}, presence, target, torch.arange(rows))


def _classification_batches() -> list[Batch]:
    # input a points at the right class with margin 2; b points at the wrong one with margin 0.5
    target = torch.tensor([0, 1, 0, 1])
    right = nn.functional.one_hot(target, 2).float() * 2.0  # (B, 2)
    wrong = nn.functional.one_hot(1 - target, 2).float() * 0.5  # (B, 2)
    return [_batch(right[:2], wrong[:2], target[:2]), _batch(right[2:], wrong[2:], target[2:])]


def test_classification_ablation_rows_and_drop_sign() -> None:
    task = make_task("multiclass")
    task.fit(["x", "y"])
    rows = modality_ablation(_model(2), task, _classification_batches(), "cpu")
    assert [r["removed"] for r in rows] == ["none", "a", "b"]
    assert {r["metric"] for r in rows} == {"accuracy"}
    assert [r["value"] for r in rows] == [1.0, 0.0, 1.0]
    assert [r["drop"] for r in rows] == [0.0, 1.0, 0.0]


def test_regression_drop_is_the_rise_of_rmse() -> None:
    task = make_task("regression")
    task.fit([0.0, 2.0])  # mean 1, so encoded targets are (y - 1) / std
    target = torch.tensor([[1.0], [-1.0], [0.5]])
    batch = _batch(target.clone(), torch.full((3, 1), 0.01), target)
    rows = modality_ablation(_model(1), task, [batch], "cpu")
    assert [r["metric"] for r in rows] == ["rmse"] * 3
    full, without_a, without_b = (r["value"] for r in rows)
    assert without_a > full and rows[1]["drop"] == pytest.approx(without_a - full)
    assert rows[1]["drop"] > 0 and abs(rows[2]["drop"]) < rows[1]["drop"]


def test_ablation_needs_labelled_batches() -> None:
    task = make_task("multiclass")
    task.fit(["x", "y"])
    batch = _classification_batches()[0]
    batch.target = None
    with pytest.raises(ValueError, match=r"at least one batch, each with targets"):
        modality_ablation(_model(2), task, [batch], "cpu")
    with pytest.raises(ValueError, match=r"at least one batch, each with targets"):
        modality_ablation(_model(2), task, [], "cpu")


def test_forward_variants_reorders_weights_to_sorted_names() -> None:
    weights = torch.tensor([[0.3, 0.7], [0.9, 0.1]])  # columns in the fusion's order: b, a
    model = _model(2, weights, names=["b", "a"])
    batch = _classification_batches()[0]
    variants = forward_variants(model, batch)
    assert variants.names == ["a", "b"]
    assert variants.weights is not None
    torch.testing.assert_close(variants.weights, torch.tensor([[0.7, 0.3], [0.1, 0.9]]))
    torch.testing.assert_close(variants.without["b"], batch.inputs["a"]["x"])
    torch.testing.assert_close(variants.full, batch.inputs["a"]["x"] + batch.inputs["b"]["x"])


def test_forward_variants_ignores_weights_of_another_shape() -> None:
    model = _model(2, torch.ones(2, 5))  # e.g. weights over tokens, not one per input
    assert forward_variants(model, _classification_batches()[0]).weights is None


def test_section_and_plot(tmp_path: Path) -> None:
    task = make_task("multiclass")
    task.fit(["x", "y"])
    rows = modality_ablation(_model(2), task, _classification_batches(), "cpu")
    png = plot_ablation(rows, tmp_path / "plots" / "ablation.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 100
    section = ablation_section(rows, plot="plots/ablation.png")
    assert "| removed input | accuracy | drop |" in section
    assert "| (none: full model) | 1.0000 | 0.0000 |" in section
    assert "| a | 0.0000 | 1.0000 |" in section
    assert section.rstrip().endswith("![Modality ablation](plots/ablation.png)")
    assert "![" not in ablation_section(rows)
    report = write_report(
        tmp_path, {"accuracy": 1.0, "n": 4}, task, title="t", extra_sections={"Modality ablation": section}
    )
    text = report.read_text()
    assert "## Modality ablation" in text and "(plots/ablation.png)" in text
