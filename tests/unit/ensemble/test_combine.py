"""Averaging members: the pseudo-logits give back the averaged probabilities through the task's own maps."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from omnifuse.ensemble.combine import EnsembleModel, combine, space_of


def test_softmax_members_average_their_probabilities() -> None:
    a = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])  # (B=2, C=3)
    b = torch.tensor([[-1.0, 3.0, 0.0], [1.0, -2.0, 0.5]])
    out = combine("softmax", [a, b], [3, 1])  # (2, 3)
    expected = (3 * torch.softmax(a, -1) + torch.softmax(b, -1)) / 4
    assert torch.allclose(torch.softmax(out, -1), expected, atol=1e-6)


def test_sigmoid_members_average_each_class_probability() -> None:
    a = torch.tensor([[4.0, -4.0]])
    b = torch.tensor([[-4.0, 0.0]])
    out = combine("sigmoid", [a, b], [1, 1])
    assert torch.allclose(torch.sigmoid(out), (torch.sigmoid(a) + torch.sigmoid(b)) / 2, atol=1e-6)


def test_regression_members_average_their_predictions() -> None:
    out = combine("identity", [torch.tensor([[1.0], [3.0]]), torch.tensor([[4.0], [0.0]])], [2, 1])
    assert torch.allclose(out, torch.tensor([[2.0], [2.0]]))


@pytest.mark.parametrize(("task", "space"), [("binary", "softmax"), ("multiclass", "softmax"),
                                              ("multilabel", "sigmoid"), ("regression", "identity")])
def test_every_predictive_task_has_an_averaging_space(task: str, space: str) -> None:
    assert space_of(task) == space


class _Constant(nn.Module):
    """A stand-in member: the same logits for every row."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        rows = presence["x"].shape[0]
        return self.logits.expand(rows, -1)  # (B, C)


def test_ensemble_model_runs_every_member_on_the_batch() -> None:
    model = EnsembleModel([_Constant([0.0, 2.0]), _Constant([2.0, 0.0])], [1, 1], "softmax")
    out = model({"x": {}}, {"x": torch.ones(3, dtype=torch.bool)})  # (3, 2)
    assert out.shape == (3, 2)
    assert torch.allclose(torch.softmax(out, -1), torch.full((3, 2), 0.5), atol=1e-6)  # symmetric mix


def test_each_members_logits_are_divided_by_its_temperature_before_the_average() -> None:
    members = [_Constant([0.0, 2.0]), _Constant([2.0, 0.0])]
    model = EnsembleModel(members, [1, 3], "softmax", temperatures=[0.5, 4.0])
    out = model({"x": {}}, {"x": torch.ones(2, dtype=torch.bool)})  # (2, 2)
    first = torch.softmax(torch.tensor([0.0, 2.0]) / 0.5, -1)
    second = torch.softmax(torch.tensor([2.0, 0.0]) / 4.0, -1)
    assert torch.allclose(torch.softmax(out, -1)[0], (first + 3 * second) / 4, atol=1e-6)
