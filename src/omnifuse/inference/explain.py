"""Per-row, per-modality explanations: fusion weights and the effect of removing each input.

For each row and model input NAME, ``delta_NAME`` is the score of the predicted answer with every input
minus the score with NAME removed (its presence set to False, the path a missing cell takes): positive
means the input supported the prediction. ``weight_NAME`` is the fusion's own per-row weight of the input
when the fusion exposes one (``last_weights``: attention, weighted_sum, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import Tensor

from omnifuse.data.collate import Example, batches
from omnifuse.evaluation.ablation import Variants, forward_variants
from omnifuse.inference.rows import Rows
from omnifuse.layers.modes import evaluating
from omnifuse.ood.rows import flag_columns
from omnifuse.ood.scoring import has_scores
from omnifuse.tasks.base import Task
from omnifuse.tasks.multilabel import MultilabelTask
from omnifuse.tasks.regression import RegressionTask

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor


def explain(predictor: Predictor, rows: Rows | str | Path, base_dir: Path | None = None) -> pd.DataFrame:
    """Explains every row: prediction, its score, and per input a fusion weight and a removal delta.

    The score is the probability of the predicted class (multiclass, binary); for multilabel the mean
    over classes of the probability of the predicted decision (p where a class is chosen, 1 - p where
    not); for regression the prediction itself (no ``probability`` column). Costs one encoder pass and
    M + 1 fusion + head passes per batch, for M inputs.

    Args:
        predictor: a loaded model.
        rows: a DataFrame, a list of row dicts, one dict, or the path of a table.
        base_dir: folder that relative file paths are resolved against (default: the table's folder, or
            the current folder for in-memory rows).

    Returns:
        One row per input row, in order: ``prediction``, ``probability`` (not for regression),
        ``weight_<input>`` per input when the fusion exposes weights (0 where the input is absent), and
        ``delta_<input>`` per input (0 where the input is absent). Inputs are ``config.input_names()``;
        the tabular columns together are the input ``tabular``.

    Raises:
        DataError: a required column is missing. BadRowError: a row cannot be preprocessed.
    """
    examples = predictor.prepare(rows, base_dir, purpose="explain")
    return explain_examples(predictor, examples)


def explain_examples(predictor: Predictor, examples: list[Example]) -> pd.DataFrame:
    """``explain`` of prepared examples, in order (the model runs in eval mode, restored after); a model
    with fitted OOD scores adds ``Predictor.ood_flags``' columns (``ood_score_<input>``,
    ``ood_weight_<input>``, ``ood_note``)."""
    parts = []
    with evaluating(predictor.model):
        for batch in batches(examples, predictor.batch_size):
            batch = batch.to(predictor.device)
            variants = forward_variants(predictor.model, batch)
            presence = {n: p.cpu() for n, p in batch.presence.items()}
            parts.append(explain_batch(predictor.task, variants, presence))
    frame = pd.concat(parts, ignore_index=True)
    if has_scores(predictor.model) and predictor.onnx_backend is None:
        _, ratios, present = predictor.run_scored(examples)
        drop = bool(getattr(predictor.model.gate, "drop", False))
        for name, values in flag_columns(ratios, present, drop).items():
            frame[name] = values
    return frame


def prediction_scores(task: Task, logits: Tensor, reference: Tensor) -> Tensor:
    """(B,) score of the answer predicted from ``reference`` logits, evaluated on ``logits``.

    Classification: the probability of the reference's argmax class; multilabel: the mean probability of
    the reference's decisions; regression: the prediction on the label's scale.
    """
    probs = task.probabilities(logits)  # (B, C); regression (B, 1)
    if isinstance(task, RegressionTask):
        return probs.reshape(-1)  # (B,)
    reference_probs = task.probabilities(reference)  # (B, C)
    if isinstance(task, MultilabelTask):
        chosen = reference_probs >= task.threshold  # (B, C)
        return torch.where(chosen, probs, 1.0 - probs).mean(dim=1)  # (B,)
    predicted = reference_probs.argmax(dim=1, keepdim=True)  # (B, 1)
    return probs.gather(1, predicted).squeeze(1)  # (B,)


def explain_batch(task: Task, variants: Variants, presence: dict[str, Tensor]) -> pd.DataFrame:
    """The explanation rows of one batch from its forward variants and its (B,) presence flags (CPU)."""
    full = variants.full
    score = prediction_scores(task, full, full)  # (B,)
    frame = pd.DataFrame({"prediction": task.decode(full)})
    if not isinstance(task, RegressionTask):
        frame["probability"] = score.numpy()
    if variants.weights is not None:
        for i, name in enumerate(variants.names):
            frame[f"weight_{name}"] = (variants.weights[:, i] * presence[name].float()).numpy()
    for name in variants.names:
        delta = score - prediction_scores(task, variants.without[name], full)  # (B,)
        frame[f"delta_{name}"] = torch.where(presence[name], delta, torch.zeros_like(delta)).numpy()
    return frame


def write_explanations(frame: pd.DataFrame, path: str | Path) -> Path:
    """Writes the ``explain`` frame as CSV (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
