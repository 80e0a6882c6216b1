"""GenerationTask: targets padded with IGNORE after the end token; the loss and metrics from per-row sums."""

from __future__ import annotations

import math

import pytest
import torch

from omnifuse.errors import DataError
from omnifuse.generation.vocab import EOS_ID
from omnifuse.tasks import task_from_state
from omnifuse.tasks.generation import IGNORE, GenerationTask


def _task() -> GenerationTask:
    task = GenerationTask(max_answer_tokens=4)
    task.fit(["a red square", "a blue circle", None])
    return task


def test_targets_end_with_the_end_token_and_are_padded() -> None:
    task = _task()
    target = task.encode("a red square")
    assert target.shape == (5,)
    assert target.tolist() == [*task.vocab.encode("a red square"), EOS_ID, IGNORE]


def test_missing_and_too_long_targets_are_reported_with_the_fix() -> None:
    problems = _task().check_labels(["a red square", "", "a red square a blue"])
    assert [p[0] for p in problems] == [1, 2]
    assert "missing" in problems[0][1]
    assert "5 tokens, more than generation.max_answer_tokens (4)" in problems[1][1]
    assert "raise generation.max_answer_tokens" in problems[1][2]


def test_loss_and_metrics_are_per_token_over_the_whole_set() -> None:
    task = _task()
    outputs = torch.tensor([[2.0, 2.0, 1.0], [4.0, 6.0, 6.0]])  # summed NLL, tokens, correct
    targets = torch.zeros(2, 5, dtype=torch.long)
    assert float(task.loss(outputs, targets)["loss"]) == pytest.approx(6.0 / 8.0)
    metrics = task.metrics(outputs, targets)
    assert metrics["loss"] == pytest.approx(0.75)
    assert metrics["perplexity"] == pytest.approx(math.exp(0.75))
    assert metrics["token_accuracy"] == pytest.approx(7.0 / 8.0)
    assert metrics["sequence_accuracy"] == pytest.approx(0.5)  # the second row has every token right
    assert task.default_monitor() == ("loss", "min")


def test_state_round_trip_and_no_probabilities() -> None:
    task = _task()
    again = task_from_state(task.state_dict())
    assert isinstance(again, GenerationTask) and again == task
    assert again.decode_ids(task.vocab.encode("a blue circle")) == "a blue circle"
    with pytest.raises(DataError, match="generation model: it writes text; use predictor.generate"):
        task.probabilities(torch.zeros(1, 3))


def test_fitting_without_any_text_is_refused() -> None:
    with pytest.raises(DataError, match="target column has no text"):
        GenerationTask().fit([None, " "])
