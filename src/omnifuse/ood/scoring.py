"""Scoring rows with a model's OOD gate: one forward pass that also gives each input's score ratio
(and, for the drift test, its alone confidence), and a whole table scored with the drift fallback."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from omnifuse.data.collate import Batch
from omnifuse.encoders.base import EncoderOutput
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.ood.drift import flag_rates


@dataclass
class ScoredTable:
    """A whole table through a model with OOD scores: logits (N, C), targets or None, the per-row ratios
    and presence, the flag rates per input, and the inputs fused as missing because they drifted."""

    logits: Tensor
    targets: Tensor | None
    ratios: dict[str, Tensor]
    present: dict[str, Tensor]
    rates: dict[str, dict[str, Any]]
    dropped: list[str]


def score_table(model: MultimodalModel, batches: list[Batch], device: torch.device,
                drop_drifted: bool) -> ScoredTable:
    """Scores every row; with ``drop_drifted``, a drifted input (``flag_rates``) is then fused as missing in
    every row, by a second pass, unless every input drifted (nothing would be left to fuse)."""
    assert model.gate is not None, "only for a model with a gate (see has_scores)"
    logits, targets, ratios, present, sure = scored_forward(model, batches, device, confidence=True)
    rates = flag_rates(ratios, present, model.gate, sure)
    dropped = [n for n, r in rates.items() if r["drifted"]] if drop_drifted else []
    if not dropped or len(dropped) == len(model.encoders):
        return ScoredTable(logits, targets, ratios, present, rates, [])
    with torch.inference_mode(), evaluating(model):
        logits = torch.cat([model(b.inputs, {n: p & (n not in dropped) for n, p in b.presence.items()}
                                  ).float().cpu() for b in (batch.to(device) for batch in batches)])
    return ScoredTable(logits, targets, ratios, present, rates, dropped)


def has_scores(model: Any) -> bool:
    """Whether ``model`` is a MultimodalModel whose gate has fitted statistics for some input."""
    gate = getattr(model, "gate", None) if isinstance(model, MultimodalModel) else None
    return gate is not None and bool(gate.fitted)


def alone_confidence(model: MultimodalModel, inputs: dict[str, dict[str, Tensor]],
                     encoded: dict[str, EncoderOutput], presence: dict[str, Tensor],
                     names: list[str]) -> dict[str, Tensor]:
    """{input: (B,) top-class probability of the model given that input alone} (the fusion sees every
    other input as missing), for each of ``names``."""
    out = {}
    for name in names:
        alone = {n: p & (n == name) for n, p in presence.items()}
        out[name] = torch.softmax(model.decide(inputs, encoded, alone).float(), dim=1).amax(dim=1)
    return out


@torch.inference_mode()
def scored_forward(model: MultimodalModel, batches: Iterable[Batch], device: torch.device,
                   confidence: bool = False
                   ) -> tuple[Tensor, Tensor | None, dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """(logits (N, C), targets or None, {input: (N,) score ratio, 0 where missing}, {input: (N,) presence
    as given}, {input: (N,) ``alone_confidence``} (with ``confidence``, for the inputs fitted with one))
    in one pass, eval mode; the logits are the model's own (its gate applied)."""
    assert model.gate is not None, "only for a model with a gate (see has_scores)"
    logits, targets = [], []
    ratios: dict[str, list[Tensor]] = {n: [] for n in model.gate.fitted}
    present: dict[str, list[Tensor]] = {n: [] for n in model.gate.fitted}
    confident = [n for n in model.gate.fitted if confidence and float(model.gate.of(n).confidence[2]) > 0]
    sure: dict[str, list[Tensor]] = {n: [] for n in confident}
    with evaluating(model):
        for batch in batches:
            batch = batch.to(device)
            encoded = model.encode(batch.inputs)
            presence = {name: batch.presence[name] for name in model.encoders}
            scores = model.gate.ratios(encoded, presence)  # {input: (B,)}, computed once
            for name, ratio in scores.items():
                ratios[name].append(ratio.float().cpu())
                present[name].append(presence[name].cpu())
            gated = model.gate.masks_for(scores, presence)
            logits.append(model.decide(batch.inputs, encoded, gated).float().cpu())
            for name, value in alone_confidence(model, batch.inputs, encoded, presence, confident).items():
                sure[name].append(value.cpu())
            if batch.target is not None:
                targets.append(batch.target.cpu())
    return (torch.cat(logits), torch.cat(targets) if targets else None,
            {n: torch.cat(v) for n, v in ratios.items()}, {n: torch.cat(v) for n, v in present.items()},
            {n: torch.cat(v) for n, v in sure.items()})


