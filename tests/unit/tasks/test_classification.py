"""Binary and multiclass classification: classes, encoding, loss, decoding, metrics, state."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from omnifuse.errors import BadValueError, DataError, ModelDirError
from omnifuse.tasks import ClassificationTask, make_task, task_from_state
from omnifuse.tasks.base import is_missing, plain_label


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def fitted(labels: list, name: str = "multiclass") -> ClassificationTask:
    task = make_task(name)
    task.fit(labels)
    assert isinstance(task, ClassificationTask)
    return task


def test_classes_sorted_and_types_kept() -> None:
    assert fitted([3, 1, 2, 1]).classes == [1, 2, 3]
    assert fitted(["b", "a", " c "]).classes == ["a", "b", "c"]
    task = fitted(list(np.array([5, 7], dtype=np.int64)))
    assert all(type(c) is int for c in task.classes)


def test_float_labels_from_a_column_with_missing_cells_become_ints() -> None:
    # pandas turns an int column with a NaN into floats: 1.0 must be the class 1
    task = fitted(list(pd.Series([1, 0, None, 1]).to_numpy()))
    assert task.classes == [0, 1]
    assert type(task.classes[0]) is int


@pytest.mark.parametrize("written", [3, "3", 3.0, np.int64(3), " 3 "])
def test_encode_accepts_the_label_as_written(written: object) -> None:
    task = fitted([1, 3, 5])
    target = task.encode(written)
    assert target.dtype == torch.long and target.shape == ()
    assert target.item() == 1


def test_encode_string_classes() -> None:
    task = fitted(["dog", "cat", "bird"])
    assert [task.encode(x).item() for x in ["bird", "cat", "dog"]] == [0, 1, 2]


def test_bool_classes_are_not_merged_with_ints() -> None:
    task = fitted([True, False])
    assert task.classes == [False, True]
    assert task.encode(True).item() == 1


def test_one_class_raises() -> None:
    with pytest.raises(DataError, match=r"only one class 'yes'.*choose task: regression"):
        fitted(["yes", "yes", None])


def test_no_labels_raises() -> None:
    with pytest.raises(DataError, match="every value is missing"):
        fitted([None, float("nan"), ""])


def test_binary_with_three_classes_raises() -> None:
    with pytest.raises(DataError, match=r"binary but the label column has 3 classes.*task: multiclass"):
        fitted(["a", "b", "c"], name="binary")


def test_check_labels_reasons() -> None:
    task = make_task("multiclass")
    labels = ["a", None, float("nan"), "  ", "b", "z", pd.NA]
    before = task.check_labels(labels)  # not fitted: unknown classes cannot be told yet
    assert [i for i, _, _ in before] == [1, 2, 3, 6]
    task.fit(["a", "b"])
    problems = task.check_labels(labels)
    assert [i for i, _, _ in problems] == [1, 2, 3, 5, 6]
    index, reason, fix = problems[3]
    assert "'z' is not one of the classes seen in training ('a', 'b')" in reason
    assert "retrain" in fix
    assert "missing" in problems[0][1] and "on_bad_row: skip" in problems[0][2]


def test_encode_bad_labels_raise() -> None:
    task = fitted(["a", "b"])
    with pytest.raises(BadValueError, match=r"label 'z' is not one of the classes seen in training"):
        task.encode("z")
    with pytest.raises(BadValueError, match="the label is missing"):
        task.encode(None)


def test_output_dim_and_binary_has_two_logits() -> None:
    assert fitted([0, 1], name="binary").output_dim == 2
    assert fitted([0, 1, 2, 3]).output_dim == 4


def test_loss_matches_cross_entropy() -> None:
    task = fitted([0, 1, 2])
    logits = torch.randn(5, 3)
    targets = torch.tensor([0, 2, 1, 1, 0])
    terms = task.loss(logits, targets)
    assert set(terms) == {"loss"}
    torch.testing.assert_close(terms["loss"], F.cross_entropy(logits, targets))


def test_probabilities_and_decode() -> None:
    task = fitted(["cat", "dog", "eel"])
    logits = torch.tensor([[0.0, 3.0, 0.0], [5.0, 0.0, 1.0]])
    probs = task.probabilities(logits)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
    assert task.decode(logits) == ["dog", "cat"]


def _logits_for(probabilities: list[list[float]]) -> torch.Tensor:
    return torch.log(torch.tensor(probabilities))


def test_metrics_hand_computed_binary() -> None:
    task = fitted(["neg", "pos"], name="binary")
    # predictions: neg, pos, pos, pos; truth: neg, neg, pos, pos
    probs = [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]]
    m = task.metrics(_logits_for(probs), torch.tensor([0, 0, 1, 1]))
    assert m["accuracy"] == pytest.approx(0.75)
    f1_neg, f1_pos = 2 / 3, 0.8  # neg: P=1, R=1/2; pos: P=2/3, R=1
    expected_neg = {"precision": 1.0, "recall": 0.5, "f1": f1_neg, "support": 2}
    assert m["per_class"]["neg"] == pytest.approx(expected_neg)
    assert m["per_class"]["pos"]["f1"] == pytest.approx(f1_pos)
    assert m["macro_f1"] == pytest.approx((f1_neg + f1_pos) / 2)
    assert m["weighted_f1"] == pytest.approx((f1_neg + f1_pos) / 2)
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["roc_auc"] == pytest.approx(1.0)  # every positive scores above every negative
    expected_log_loss = -np.mean(np.log([0.9, 0.4, 0.7, 0.8]))
    assert m["log_loss"] == pytest.approx(expected_log_loss, rel=1e-5)
    assert m["classes"] == ["neg", "pos"]
    json.dumps(m, allow_nan=False)


def test_metrics_class_names_are_strings_for_int_classes() -> None:
    task = fitted([0, 1, 2])
    m = task.metrics(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert m["classes"] == ["0", "1", "2"]
    assert set(m["per_class"]) == {"0", "1", "2"}
    assert isinstance(m["roc_auc"], float)


def test_metrics_with_a_class_missing_from_targets_have_no_nan() -> None:
    task = fitted(["a", "b", "c"])
    m = task.metrics(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    assert m["roc_auc"] is None
    assert m["per_class"]["c"]["support"] == 0
    text = json.dumps(m, allow_nan=False)
    assert "NaN" not in text

    binary = fitted([0, 1], name="binary")
    assert binary.metrics(torch.randn(3, 2), torch.tensor([1, 1, 1]))["roc_auc"] is None


def test_state_round_trip_through_json_keeps_int_classes() -> None:
    task = fitted([10, 2, 7])
    state = json.loads(json.dumps(task.state_dict()))
    rebuilt = task_from_state(state)
    assert rebuilt == task
    assert rebuilt.classes == [2, 7, 10] and all(type(c) is int for c in rebuilt.classes)
    assert rebuilt.encode("7").item() == 1
    binary = fitted(["n", "y"], name="binary")
    assert task_from_state(json.loads(json.dumps(binary.state_dict()))).name == "binary"
    assert binary != task


def test_default_monitor() -> None:
    assert fitted([0, 1]).default_monitor() == ("accuracy", "max")


def test_unknown_task_names() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'multiclas'. Did you mean 'multiclass'"):
        make_task("multiclas")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        task_from_state({"name": "ranking"})


def test_helpers() -> None:
    assert is_missing(None) and is_missing(float("nan")) and is_missing(pd.NA) and is_missing(" ")
    assert not is_missing(0) and not is_missing("0") and not is_missing(["a"])
    assert plain_label(np.float64(2.0)) == 2 and type(plain_label(np.float64(2.0))) is int
    assert plain_label(2.5) == 2.5 and math.isclose(plain_label(np.float32(0.5)), 0.5)


def test_temperature_scales_the_probabilities_not_the_decisions_and_is_saved() -> None:
    task = ClassificationTask("multiclass", classes=["a", "b", "c"], temperature=2.0)
    logits = torch.tensor([[2.0, 0.0, -2.0], [0.0, 1.0, 0.0]])
    torch.testing.assert_close(task.probabilities(logits), torch.softmax(logits / 2.0, dim=-1))
    assert task.decode(logits) == ["a", "b"]
    rebuilt = task_from_state(json.loads(json.dumps(task.state_dict())))
    assert isinstance(rebuilt, ClassificationTask) and rebuilt.temperature == 2.0 and rebuilt == task
    old = task_from_state({"name": "multiclass", "classes": ["a", "b", "c"]})  # saved before calibration
    assert isinstance(old, ClassificationTask) and old.temperature == 1.0 and old != task
    assert "temperature" not in old.state_dict()
    for bad in (0.0, -1.0, float("nan"), "2", True):
        with pytest.raises(ModelDirError, match="temperature must be a positive number"):
            task_from_state({"name": "multiclass", "classes": ["a", "b"], "temperature": bad})
