"""Fitting the reliability gate of a trained model: statistics on training rows, thresholds on validation."""

from __future__ import annotations

import math

import numpy as np
import torch
from rich.console import Console
from torch import Tensor

from omnifuse.config.sections import OodConfig
from omnifuse.data.collate import Example, batches
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.ood.gate import InputStatistics
from omnifuse.ood.mahalanobis import fit_whitened, nearest_distance
from omnifuse.ood.scoring import alone_confidence

MIN_OOD_ROWS = 20  # validation rows (with the input present) a threshold is fitted on, at the least


@torch.inference_mode()
def pooled_of(model: MultimodalModel, examples: list[Example]) -> tuple[dict[str, Tensor], dict[str, Tensor],
                                                                         Tensor | None]:
    """({input: (N, D) pooled embeddings}, {input: (N,) presence}, targets or None) of the rows, eval mode."""
    device = next(model.parameters()).device
    pooled: dict[str, list[Tensor]] = {n: [] for n in model.encoders}
    present: dict[str, list[Tensor]] = {n: [] for n in model.encoders}
    targets = []
    with evaluating(model):
        for batch in batches(examples, 64):
            batch = batch.to(device)
            for name in model.encoders:
                pooled[name].append(model.encode_input(name, batch.inputs[name]).pooled.float().cpu())
                present[name].append(batch.presence[name].cpu())
            if batch.target is not None:
                targets.append(batch.target.cpu())
    return ({n: torch.cat(v) for n, v in pooled.items()}, {n: torch.cat(v) for n, v in present.items()},
            torch.cat(targets) if targets else None)


def fit_gate(model: MultimodalModel, train: list[Example], valid: list[Example], options: OodConfig,
             seed: int, console: Console) -> None:
    """Fits ``model.gate`` in place: per input, class centres and a shared covariance on (a seeded sample
    of at most ``options.max_rows``) training rows, the threshold at ``options.quantile`` of the validation
    rows' distances. An input with fewer than ``MIN_OOD_ROWS`` validation values is left unfitted (never
    flagged), and so said."""
    gate = model.gate
    if gate is None or not train:
        return
    if len(train) > options.max_rows:
        chosen = np.random.default_rng(seed).choice(len(train), options.max_rows, replace=False)
        train = [train[i] for i in sorted(chosen)]
    train_pooled, train_present, targets = pooled_of(model, train)
    valid_pooled, valid_present, _ = pooled_of(model, valid)
    groups = _groups(targets, len(train), gate.of(next(iter(gate.stats))).centres.shape[0])
    fitted, skipped = [], []
    for name in gate.stats:
        stats = gate.of(name)
        scores = valid_pooled[name][valid_present[name]]  # (N_valid, D)
        rows = train_present[name]
        if len(scores) < MIN_OOD_ROWS or int(rows.sum()) < 2:
            skipped.append(f"{name} ({len(scores)} validation value(s))")
            continue
        _fit_input(stats, train_pooled[name][rows].numpy(), groups[rows.numpy()], scores, options.quantile)
        flagged = float((stats.ratio(scores) > 1).float().mean())
        fitted.append(f"{name} ({flagged:.1%})")
    if len(gate.of(next(iter(gate.stats))).centres) > 1:  # a classifier: the confidence drift test too
        _fit_confidence(model, valid, gate.fitted)
    _say(console, fitted, skipped, options.quantile, len(valid))


@torch.inference_mode()
def _fit_confidence(model: MultimodalModel, valid: list[Example], names: list[str]) -> None:
    """Each input's mean, variance and count of ``alone_confidence`` on the validation rows."""
    assert model.gate is not None
    device = next(model.parameters()).device
    values: dict[str, list[Tensor]] = {n: [] for n in names}
    with evaluating(model):
        for batch in batches(valid, 64):
            batch = batch.to(device)
            encoded = model.encode(batch.inputs)
            presence = {n: batch.presence[n] for n in model.encoders}
            for name, sure in alone_confidence(model, batch.inputs, encoded, presence, names).items():
                values[name].append(sure[presence[name]].cpu())
    for name, parts in values.items():
        sure = torch.cat(parts)
        if len(sure) >= 2:
            summary = [float(sure.mean()), float(sure.var()), float(len(sure))]
            model.gate.of(name).confidence.copy_(torch.tensor(summary))


def _groups(targets: Tensor | None, rows: int, count: int) -> np.ndarray:
    """(N,) group of each training row: its class for a classifier (one group per class), else 0."""
    if count == 1 or targets is None or targets.dim() != 1:
        return np.zeros(rows, dtype=np.int64)
    return targets.long().numpy()


def _fit_input(stats: InputStatistics, embeddings: np.ndarray, groups: np.ndarray, valid: Tensor,
               quantile: float) -> None:
    """Sets one input's buffers; a class with no training value here shares another's centre."""
    centres, whitener = fit_whitened(embeddings, groups)  # (K', D) over the classes seen
    seen = np.unique(groups)
    full = np.repeat(centres[:1], stats.centres.shape[0], axis=0)  # (K, D)
    full[seen] = centres
    stats.centres.copy_(torch.from_numpy(full))
    stats.whitener.copy_(torch.from_numpy(whitener))
    distances = nearest_distance(valid, stats.centres, stats.whitener).sort().values  # (N_valid,)
    n = len(distances)
    rank = min(max(math.ceil(quantile * n), 1), n)  # the threshold is the rank-th smallest distance
    stats.threshold.fill_(max(float(distances[rank - 1]), 1e-6))
    stats.exceedance.copy_(torch.tensor([n - rank + 1, rank], dtype=torch.float32))
    stats.fitted.fill_(True)


def _say(console: Console, fitted: list[str], skipped: list[str], quantile: float, rows: int) -> None:
    if fitted:
        console.print(f"OOD scores fitted: {', '.join(fitted)} of the validation values flagged (threshold: "
                      f"the {quantile:.0%} quantile of {rows} validation rows)")
    if skipped:
        console.print(f"No OOD score for {', '.join(skipped)}: at least {MIN_OOD_ROWS} validation values "
                      "are needed; these inputs are never flagged")
