"""Modality ablation: the headline metric with each model input removed, and its report section and plot.

Removing an input means setting its presence flag to False for every row, the same path a missing cell
takes, so every fusion handles it. The encoders run once per batch; only fusion and head are re-run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from omnifuse.data.collate import Batch
from omnifuse.errors import DataError
from omnifuse.evaluation.report import _figure, _save, format_value
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.tasks.base import Task

FULL_MODEL = "none"  # the ``removed`` value of the row for the full model


@dataclass
class Variants:
    """Outputs of one batch with all inputs and with each input removed.

    Attributes:
        full: (B, C) logits with the batch's own presence.
        without: {input name: (B, C) logits with that input absent in every row}.
        weights: (B, M) fusion weights of the full forward in ``names`` order, or None when the fusion
            exposes none (no ``last_weights``, or not one weight per input and row).
        names: the model inputs, sorted.
    """

    full: Tensor
    without: dict[str, Tensor]
    weights: Tensor | None
    names: list[str]


def _fusion_weights(model: MultimodalModel, names: list[str], rows: int) -> Tensor | None:
    """The fusion's ``last_weights`` (B, M) reordered to ``names``, or None when it has none usable."""
    weights = getattr(model.fusion, "last_weights", None)
    if not isinstance(weights, Tensor) or tuple(weights.shape) != (rows, len(names)):
        return None
    order = list(getattr(model.fusion, "input_names", names))
    if sorted(order) != names:
        return None
    return weights[:, [order.index(n) for n in names]].float()  # (B, M)


@torch.inference_mode()
def forward_variants(model: MultimodalModel, batch: Batch) -> Variants:
    """Runs the encoders once, then fusion + head with all inputs and once per removed input.

    Args:
        model: the model (in eval mode; its device is the batch's).
        batch: a collated batch already on the model's device.

    Returns:
        The logits of every variant on the CPU, and the fusion weights of the full forward.
    """
    features = model.encode(batch.inputs)
    names = sorted(batch.presence)
    fusion: Any = model.fusion
    if hasattr(fusion, "last_weights"):
        fusion.last_weights = None  # never read a stale value from an earlier forward
    full = model.decide(batch.inputs, features, batch.presence).float()  # (B, C)
    weights = _fusion_weights(model, names, full.shape[0])
    without: dict[str, Tensor] = {}
    for name in names:
        presence = {**batch.presence, name: torch.zeros_like(batch.presence[name])}
        without[name] = model.decide(batch.inputs, features, presence).float().cpu()  # (B, C)
    return Variants(full.cpu(), without, None if weights is None else weights.cpu(), names)


def _headline(task: Task, logits: Tensor, targets: Tensor, metric: str) -> float:
    value = task.metrics(logits, targets).get(metric)
    return float("nan") if value is None else float(value)


def modality_ablation(
    model: MultimodalModel, task: Task, batches: Sequence[Batch], device: torch.device | str
) -> list[dict[str, Any]]:
    """The task's headline metric for the full model and with each input removed from every row.

    Args:
        model: the trained model.
        task: its fitted task; the metric is ``task.default_monitor()[0]`` (accuracy, macro_f1 or rmse).
        batches: collated batches with targets.
        device: where the model is.

    Returns:
        One dict per variant, the full model first: ``removed`` ("none" or the input's name),
        ``metric``, ``value`` and ``drop``: how much worse than the full model (positive: the input
        helped; for rmse, the rise of the error).

    Raises:
        ValueError: no batches, or a batch without targets.
    """
    if not batches or any(b.target is None for b in batches):
        raise DataError("modality_ablation needs at least one batch, each with targets (labelled rows)")
    with evaluating(model):
        variants = [forward_variants(model, b.to(device)) for b in batches]
    targets = torch.cat([b.target.cpu() for b in batches if b.target is not None])
    metric, mode = task.default_monitor()
    full = _headline(task, torch.cat([v.full for v in variants]), targets, metric)
    rows = [{"removed": FULL_MODEL, "metric": metric, "value": full, "drop": 0.0}]
    for name in variants[0].names:
        value = _headline(task, torch.cat([v.without[name] for v in variants]), targets, metric)
        drop = full - value if mode == "max" else value - full
        rows.append({"removed": name, "metric": metric, "value": value, "drop": drop})
    return rows


def ablation_section(rows: list[dict[str, Any]], plot: str | None = None) -> str:
    """A markdown table of ``modality_ablation`` rows, optionally followed by an image link.

    Args:
        rows: what ``modality_ablation`` returned.
        plot: the image's path relative to the report (e.g. ``plots/ablation.png``), or None.
    """
    metric = rows[0]["metric"] if rows else "metric"
    lines = [
        f"The {metric} with one input removed from every row (its presence set to False);",
        "drop: how much worse than the full model (positive: the input helped).",
        "",
        f"| removed input | {metric} | drop |",
        "|---|---:|---:|",
    ]
    for row in rows:
        name = "(none: full model)" if row["removed"] == FULL_MODEL else row["removed"]
        lines.append(f"| {name} | {format_value(row['value'])} | {format_value(row['drop'])} |")
    if plot is not None:
        lines += ["", f"![Modality ablation]({plot})"]
    return "\n".join(lines) + "\n"


def plot_ablation(rows: list[dict[str, Any]], path: Path) -> Path:
    """A horizontal bar per removed input with its metric drop versus the full model; writes a PNG."""
    removed = [r for r in rows if r["removed"] != FULL_MODEL]
    full = next((r for r in rows if r["removed"] == FULL_MODEL), None)
    metric = rows[0]["metric"] if rows else "metric"
    drops = np.array([0.0 if math.isnan(r["drop"]) else r["drop"] for r in removed], dtype=np.float64)
    fig = _figure(6.0, 1.5 + 0.4 * max(len(removed), 1))
    ax = fig.add_subplot()
    positions = np.arange(len(removed))
    colours = ["tab:red" if d > 0 else "tab:grey" for d in drops]
    ax.barh(positions, drops, color=colours)
    ax.set_yticks(positions, labels=[str(r["removed"]) for r in removed])
    ax.invert_yaxis()  # first input on top, as in the table
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop in {metric} when the input is removed (positive: it helped)")
    title = "Modality ablation"
    if full is not None:
        title += f" (full model {metric} {format_value(full['value'])})"
    ax.set_title(title)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, Path(path))
