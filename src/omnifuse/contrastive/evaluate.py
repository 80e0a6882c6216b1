"""Evaluation of a contrastive model: retrieval metrics between its columns, report.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader

from omnifuse.data.collate import Example, collate
from omnifuse.data.dataset import ExampleDataset
from omnifuse.evaluation.report import write_report
from omnifuse.training.batched_forward import run_model

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor


def evaluate_contrastive(
    predictor: Predictor,
    examples: list[Example],
    out: Path,
    title: str,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Retrieval metrics of prepared rows (see ``ContrastiveTask.metrics``); writes ``out/report.md``.

    Returns:
        recall@1/5/10, mrr, median_rank (and with labels precision@10, map) averaged over both directions
        (and every column pair), the per-direction figures under ``"a->b/..."``, and ``n`` (rows).
    """
    batches = DataLoader(ExampleDataset(examples), batch_size=predictor.batch_size, collate_fn=collate)
    outputs, targets, _ = run_model(predictor.model, batches, predictor.device)
    assert targets is not None, "evaluation examples carry label ids"
    metrics = predictor.task.metrics(outputs, targets)
    metrics["n"] = len(examples)
    write_report(out, metrics, predictor.task, title=title, history=history)
    return metrics
