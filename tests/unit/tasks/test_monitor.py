"""The monitored metric and its direction are decided by the task, for every task."""

from __future__ import annotations

import pytest

from omnifuse.tasks import make_task
from omnifuse.tasks.base import metric_mode


@pytest.mark.parametrize(("task", "setting", "expected"), [
    ("multiclass", "auto", ("accuracy", "max")),
    ("binary", "loss", ("loss", "min")),
    ("multiclass", "macro_f1", ("macro_f1", "max")),
    ("regression", "auto", ("rmse", "min")),
    ("regression", "r2", ("r2", "max")),
    ("regression", "mae", ("mae", "min")),
    ("multilabel", "auto", ("macro_f1", "max")),
    ("multilabel", "hamming_loss", ("hamming_loss", "min")),
])
def test_the_task_decides_the_monitored_metric(task: str, setting: str, expected: tuple[str, str]) -> None:
    assert make_task(task).monitor(setting) == expected


def test_metric_mode() -> None:
    modes = [metric_mode(m) for m in ("valid_loss", "rmse", "accuracy", "recall@1")]
    assert modes == ["min", "min", "max", "max"]
