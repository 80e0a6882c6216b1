"""Fits the model's FeatureStandardizers (frozen encoders' inputs) on the training rows, before training.

A cached input's features are read from the cache; any other frozen input's encoder runs once in eval
mode, without gradients, over at most ``MAX_ROWS`` training rows (evenly spaced, so the same rows for a
given table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from rich.console import Console
from rich.markup import escape

from omnifuse.data.collate import Example
from omnifuse.layers.standardize import FeatureStandardizer
from omnifuse.model import MultimodalModel
from omnifuse.training.batched_forward import pooled_outputs
from omnifuse.training.feature_cache import POOLED

if TYPE_CHECKING:
    from omnifuse.config.sections import Config

MAX_ROWS = 20000  # rows the statistics of a non-cached frozen encoder are computed on


def fit_standardizers(model: MultimodalModel, train: Sequence[Example], cached: Sequence[str],
                      batch_size: int, device: torch.device | str = "cpu") -> list[str]:
    """Fits each standardizer of ``model`` on the present rows of ``train``; returns the inputs fitted.

    Args:
        model: the model before training (its standardizers start as the identity).
        train: the training rows; for the inputs in ``cached`` they hold the cached features.
        cached: the inputs whose features ``train`` holds (``training.feature_cache``).
        batch_size: rows per encoder pass (non-cached inputs).
        device: where a non-cached encoder runs.
    Returns:
        The inputs whose standardizer was fitted; one with no present training row stays the identity.
    """
    fitted = []
    for name, standardizer in model.standardizers.items():
        assert isinstance(standardizer, FeatureStandardizer), type(standardizer)
        rows = [ex for ex in train if ex.presence[name]]
        if not rows:
            continue
        if name in cached:
            pooled = torch.stack([ex.inputs[name][POOLED] for ex in rows]).float()  # (N, D)
        else:
            step = max(1, -(-len(rows) // MAX_ROWS))
            pooled = pooled_outputs(model.encoders[name], rows[::step], name, device, batch_size)
        standardizer.fit(pooled)
        fitted.append(name)
    return fitted


@torch.inference_mode()
def standardize_for_run(cfg: Config, model: MultimodalModel, train: Sequence[Example] | None,
                        cached: Sequence[str], console: Console) -> None:
    """``fit_standardizers`` for a training run, with one console line saying what was fitted.

    ``train`` is None when the training rows are streamed (``data.streaming``): the standardizers then
    stay the identity, and the line says so.
    """
    if not model.standardizers:
        return
    names = ", ".join(escape(n) for n in model.standardizers)
    if train is None:
        console.print(f"[yellow]training.standardize_frozen: {names} not standardised: with data.streaming "
                      "the training rows are not held to compute the statistics[/yellow]")
        return
    gpu = cfg.training.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    fitted = fit_standardizers(model, train, cached, cfg.training.batch_size, device)
    if fitted:
        console.print(f"Frozen features standardised per dimension (training rows): {', '.join(fitted)}")
