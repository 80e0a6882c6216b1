"""Multilabel classification: splitting, multi-hot targets, BCE loss, thresholded decoding, metrics."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from omnifuse.errors import BadValueError, DataError
from omnifuse.tasks import MultilabelTask, make_task, task_from_state


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def fitted(labels: list, **options: object) -> MultilabelTask:
    task = make_task("multilabel", options.pop("delimiter", "|"), **options)  # type: ignore[arg-type]
    task.fit(labels)
    assert isinstance(task, MultilabelTask)
    return task


def test_fit_splits_strips_and_sorts() -> None:
    task = fitted(["b|a", " a | c ", None, "c||"])
    assert task.classes == ["a", "b", "c"]
    assert task.output_dim == 3


def test_other_delimiter_and_list_labels() -> None:
    task = fitted(["x;y", "z"], delimiter=";")
    assert task.classes == ["x", "y", "z"]
    torch.testing.assert_close(task.encode(["z", "x"]), torch.tensor([1.0, 0.0, 1.0]))


def test_encode_multi_hot() -> None:
    task = fitted(["a|b", "c"])
    target = task.encode("c | a")
    assert target.dtype == torch.float32
    torch.testing.assert_close(target, torch.tensor([1.0, 0.0, 1.0]))


def test_encode_and_check_bad_labels() -> None:
    task = fitted(["a|b", "c"])
    with pytest.raises(BadValueError, match=r"label class\(es\) 'q' not seen in training"):
        task.encode("a|q")
    with pytest.raises(BadValueError, match="the label is missing"):
        task.encode("|")
    problems = task.check_labels(["a", None, "a|q", "||", "b|c"])
    assert [i for i, _, _ in problems] == [1, 2, 3]
    assert "check the delimiter ('|')" in problems[1][2]


def test_no_labels_and_empty_delimiter_raise() -> None:
    with pytest.raises(DataError, match=r"no labels.*separated by '\|'"):
        fitted([None, "", "|"])
    with pytest.raises(ValueError, match="delimiter must not be empty"):
        MultilabelTask(delimiter="")


def test_loss_matches_bce_with_logits() -> None:
    task = fitted(["a|b", "c"])
    logits = torch.randn(4, 3)
    targets = torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(task.loss(logits, targets)["loss"], expected)


def test_balanced_loss_uses_pos_weight() -> None:
    # a: 1 positive of 4 rows -> 3/1; b: 2 of 4 -> 2/2; c: 4 of 4 -> 0/4
    task = fitted(["a|b|c", "b|c", "c", "c"], balance=True)
    assert task.state_dict()["pos_weight"] == pytest.approx([3.0, 1.0, 0.0])
    logits = torch.randn(2, 3)
    targets = torch.tensor([[1.0, 0, 1], [0, 1, 1]])
    expected = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor([3.0, 1.0, 0.0]))
    torch.testing.assert_close(task.loss(logits, targets)["loss"], expected)


def test_decode_with_threshold() -> None:
    task = fitted(["a|b", "c"])
    logits = torch.tensor([[2.0, -2.0, 0.0], [-3.0, -3.0, -3.0]])  # sigmoid(0) = 0.5 counts as predicted
    assert task.decode(logits) == ["a|c", ""]
    strict = fitted(["a|b", "c"], threshold=0.8)  # sigmoid(2) = 0.88
    assert strict.decode(logits) == ["a", ""]


def test_metrics_hand_computed() -> None:
    task = fitted(["a|b", "a", "b"])
    targets = torch.tensor([[1.0, 0], [1, 1], [0, 1], [0, 0]])
    predicted = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    logits = (predicted * 2 - 1) * 3  # +-3: confidently on/off
    m = task.metrics(logits, targets)
    # a: tp 2, fp 0, fn 0 -> f1 1; b: tp 1, fp 1, fn 1 -> f1 1/2; micro: tp 3, fp 1, fn 1 -> 6/8
    assert m["per_class"]["a"]["f1"] == pytest.approx(1.0)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(0.75)
    assert m["micro_f1"] == pytest.approx(0.75)
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_loss"] == pytest.approx(2 / 8)
    assert m["roc_auc"] == pytest.approx((1.0 + 0.5) / 2)  # b: ties everywhere, AUC 1/2
    json.dumps(m, allow_nan=False)


def test_metrics_roc_auc_only_over_defined_classes() -> None:
    task = fitted(["a|b", "a"])
    targets = torch.tensor([[1.0, 0], [0, 0], [1, 0]])  # b never positive: its AUC is undefined
    logits = torch.tensor([[2.0, 0], [-2, 0], [1, 0]])
    m = task.metrics(logits, targets)
    assert m["roc_auc"] == pytest.approx(1.0)
    none = task.metrics(logits, torch.zeros(3, 2))
    assert none["roc_auc"] is None
    assert "NaN" not in json.dumps(none)


def test_state_round_trip_and_monitor() -> None:
    task = fitted(["a|b", "c"], delimiter="|", threshold=0.3, balance=True)
    rebuilt = task_from_state(json.loads(json.dumps(task.state_dict())))
    assert rebuilt == task
    assert isinstance(rebuilt, MultilabelTask) and rebuilt.threshold == 0.3
    assert rebuilt.default_monitor() == ("macro_f1", "max")
