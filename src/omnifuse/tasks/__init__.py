"""Tasks: label encoding, loss terms, predictions and metrics (binary, multiclass, multilabel, regression)."""

from __future__ import annotations

from typing import Any

from omnifuse.errors import ModelDirError, OptionError
from omnifuse.registry import unknown_name_message
from omnifuse.tasks.base import Task
from omnifuse.tasks.classification import ClassificationTask
from omnifuse.tasks.contrastive import ContrastiveTask
from omnifuse.tasks.generation import GenerationTask
from omnifuse.tasks.multilabel import MultilabelTask
from omnifuse.tasks.regression import RegressionTask

TASK_NAMES = ("binary", "multiclass", "multilabel", "regression")

__all__ = [
    "TASK_NAMES",
    "ClassificationTask",
    "ContrastiveTask",
    "MultilabelTask",
    "RegressionTask",
    "Task",
    "make_task",
    "task_from_state",
]


def make_task(task_name: str, delimiter: str = "|", *, threshold: float = 0.5, balance: bool = False) -> Task:
    """An unfitted task by name.

    Args:
        task_name: "binary", "multiclass", "multilabel" or "regression".
        delimiter: multilabel only: separates the classes in one cell.
        threshold: multilabel only: probability from which a class is predicted.
        balance: multilabel only: weight rare classes' positives (BCE ``pos_weight``).

    Raises:
        ValueError: unknown task name; the message lists the choices.
    """
    if task_name in ("binary", "multiclass"):
        return ClassificationTask(name=task_name)  # type: ignore[arg-type]
    if task_name == "multilabel":
        return MultilabelTask(delimiter=delimiter, threshold=threshold, balance=balance)
    if task_name == "regression":
        return RegressionTask()
    raise OptionError(unknown_name_message("task", task_name, list(TASK_NAMES)))


def task_from_state(state: dict[str, Any]) -> Task:
    """Rebuilds a fitted task from ``Task.state_dict()`` output (e.g. read back from JSON).

    Raises:
        ModelDirError: the state names an unknown task.
    """
    name = state.get("name")
    if name in ("binary", "multiclass"):
        return ClassificationTask.from_state(state)
    if name == "multilabel":
        return MultilabelTask.from_state(state)
    if name == "regression":
        return RegressionTask.from_state(state)
    if name == "contrastive":
        return ContrastiveTask.from_state(state)
    if name == "generation":
        return GenerationTask.from_state(state)
    unknown = unknown_name_message("task", str(name), list(TASK_NAMES))
    raise ModelDirError(f"the saved task state: {unknown}; the model folder is damaged or from a newer "
                        "omnifuse: train and save the model again")
