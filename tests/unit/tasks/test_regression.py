"""Regression: standardised targets, MSE, de-standardised predictions and metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from omnifuse.errors import BadValueError, DataError
from omnifuse.tasks import RegressionTask, make_task, task_from_state


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def fitted(labels: list) -> RegressionTask:
    task = make_task("regression")
    task.fit(labels)
    assert isinstance(task, RegressionTask)
    return task


def test_fit_mean_std_ignoring_bad_values() -> None:
    task = fitted([1.0, "3", np.int64(5), None, "abc", float("nan")])
    assert task.mean == pytest.approx(3.0)
    assert task.std == pytest.approx(math.sqrt(8 / 3))
    assert task.classes == [] and task.output_dim == 1


def test_constant_targets_get_unit_std() -> None:
    assert fitted([2.0, 2.0]).std == 1.0


def test_no_numbers_raises() -> None:
    with pytest.raises(DataError, match=r"no numbers \(e.g. 'cat'\).*choose task: multiclass"):
        fitted([None, "cat", "dog"])


def test_encode_standardises() -> None:
    task = fitted([1.0, 3.0])  # mean 2, std 1
    target = task.encode("4")
    assert target.shape == (1,) and target.dtype == torch.float32
    torch.testing.assert_close(target, torch.tensor([2.0]))


def test_check_labels_and_encode_errors() -> None:
    task = fitted([1.0, 3.0])
    problems = task.check_labels([1, None, "abc", float("inf"), "2.5", True])
    assert [i for i, _, _ in problems] == [1, 2, 3, 5]
    assert problems[1][1] == "label 'abc' is not a finite number"
    assert "choose task: multiclass" in problems[1][2]
    with pytest.raises(BadValueError, match="label 'abc' is not a finite number"):
        task.encode("abc")
    with pytest.raises(BadValueError, match="the label is missing"):
        task.encode(float("nan"))


def test_loss_is_mse_on_standardised_targets() -> None:
    task = fitted([0.0, 10.0])
    logits = torch.randn(4, 1)
    targets = torch.stack([task.encode(v) for v in [0.0, 5.0, 10.0, 2.0]])  # (4, 1)
    torch.testing.assert_close(task.loss(logits, targets)["loss"], F.mse_loss(logits, targets))


def test_probabilities_and_decode_destandardise() -> None:
    task = fitted([0.0, 10.0])  # mean 5, std 5
    logits = torch.tensor([[0.0], [1.0], [-1.0]])
    torch.testing.assert_close(task.probabilities(logits), torch.tensor([[5.0], [10.0], [0.0]]))
    assert task.decode(logits) == [5.0, 10.0, 0.0]
    assert all(type(v) is float for v in task.decode(logits))


def test_metrics_hand_computed_on_label_scale() -> None:
    task = fitted([0.0, 10.0])
    truth = [1.0, 2.0, 3.0, 4.0]
    predictions = torch.tensor([1.0, 2.0, 3.0, 5.0])
    targets = torch.stack([task.encode(v) for v in truth])
    logits = ((predictions - task.mean) / task.std).reshape(-1, 1)
    m = task.metrics(logits, targets)
    assert m["rmse"] == pytest.approx(0.5, rel=1e-5)  # sqrt(1/4)
    assert m["mae"] == pytest.approx(0.25, rel=1e-5)
    assert m["r2"] == pytest.approx(0.8, rel=1e-5)  # 1 - 1 / 5
    json.dumps(m, allow_nan=False)


def test_r2_undefined_for_constant_targets() -> None:
    task = fitted([0.0, 10.0])
    m = task.metrics(torch.zeros(2, 1), torch.stack([task.encode(3.0), task.encode(3.0)]))
    assert m["r2"] is None and m["rmse"] == pytest.approx(2.0)


def test_state_round_trip_and_monitor() -> None:
    task = fitted([1.5, 2.5, 9.0])
    rebuilt = task_from_state(json.loads(json.dumps(task.state_dict())))
    assert rebuilt == task
    assert rebuilt.default_monitor() == ("rmse", "min")
