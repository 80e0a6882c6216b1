"""What the gate saw: per-row score ratios in one forward pass, and the share of flagged values per input."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from omnifuse.data.collate import Batch
from omnifuse.encoders.base import EncoderOutput
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.ood.gate import ReliabilityGate, gated_presence


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


def alone_confidence(model: MultimodalModel, encoded: dict[str, EncoderOutput], presence: dict[str, Tensor],
                     names: list[str]) -> dict[str, Tensor]:
    """{input: (B,) top-class probability of the model given that input alone} (the fusion sees every
    other input as missing), for each of ``names``."""
    out = {}
    for name in names:
        alone = {n: p & (n == name) for n, p in presence.items()}
        out[name] = torch.softmax(model.head(model.fusion(encoded, alone)).float(), dim=1).amax(dim=1)
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
            fused = model.fusion(encoded, model.gate.masks_for(scores, presence))  # (B, F)
            logits.append(model.head(fused).float().cpu())
            for name, value in alone_confidence(model, encoded, presence, confident).items():
                sure[name].append(value.cpu())
            if batch.target is not None:
                targets.append(batch.target.cpu())
    return (torch.cat(logits), torch.cat(targets) if targets else None,
            {n: torch.cat(v) for n, v in ratios.items()}, {n: torch.cat(v) for n, v in present.items()},
            {n: torch.cat(v) for n, v in sure.items()})


DRIFT_P = 1e-3  # a column drifted: this unlikely to flag so many values if the rows were like validation's


def flag_rates(ratios: dict[str, Tensor], present: dict[str, Tensor], gate: ReliabilityGate,
               confidences: dict[str, Tensor] | None = None) -> dict[str, dict[str, Any]]:
    """{input: {"values", "flagged", "flag_rate", "expected_rate", "drift_p", "drifted"}}: the present
    values, how many were flagged and their share; the share expected of values like the validation
    ones; the chance of flagging at least that many such values; and whether the column drifted (a
    chance below ``DRIFT_P``). The chance is beta-binomial: the threshold is itself estimated from a few
    validation values, so the true in-distribution share varies (``InputStatistics.exceedance``).

    With ``confidences`` ({input: (N,) ``alone_confidence``}), an input fitted with a validation
    confidence also gets ``confidence``, ``expected_confidence`` and ``confidence_p`` (one-sided Welch
    test that the mean fell), and drifted when either chance is below ``DRIFT_P``: values that each look
    typical but leave the model unsure, as a voice from another speech engine does."""
    from scipy.stats import betabinom

    out = {}
    for name, ratio in sorted(ratios.items()):
        a, b = (float(v) for v in gate.of(name).exceedance)
        values = int(present[name].sum())
        flagged = int(((ratio > 1) & present[name]).sum())
        p_value = float(betabinom.sf(flagged - 1, values, a, b)) if values else 1.0  # P(X >= flagged)
        out[name] = {"values": values, "flagged": flagged, "flag_rate": flagged / values if values else 0.0,
                     "expected_rate": a / (a + b), "drift_p": p_value, "drifted": p_value < DRIFT_P}
        if confidences is not None and name in confidences:
            out[name] |= confidence_drift(confidences[name][present[name]], gate.of(name).confidence)
            out[name]["drifted"] = out[name]["drifted"] or out[name]["confidence_p"] < DRIFT_P
    return out


def confidence_drift(values: Tensor, validation: Tensor) -> dict[str, float]:
    """``confidence`` (the values' mean), ``expected_confidence`` (validation's) and ``confidence_p``: the
    one-sided Welch z-test chance of a mean this low if the values were like validation's."""
    from scipy.stats import norm

    mean, var, count = (float(v) for v in validation)
    if len(values) < 2 or count < 2:
        return {"confidence": float(values.mean()) if len(values) else float("nan"),
                "expected_confidence": mean, "confidence_p": 1.0}
    here = float(values.mean())
    error = math.sqrt(var / count + float(values.var()) / len(values)) or 1e-9
    p_value = float(norm.sf((mean - here) / error))
    return {"confidence": here, "expected_confidence": mean, "confidence_p": p_value}


def drift_lines(rates: dict[str, dict[str, Any]]) -> list[str]:
    """One line per input: its flagged share against the expected one, and the drift verdict."""
    lines = []
    for name, r in rates.items():
        reasons = []
        if r["drift_p"] < DRIFT_P:
            reasons.append(f"{name} looks unlike the training {name} (p = {r['drift_p']:.1e})")
        if r.get("confidence_p", 1.0) < DRIFT_P:
            reasons.append(f"the model is unsure of {name} (mean confidence {r['confidence']:.2f}, "
                           f"{r['expected_confidence']:.2f} on validation; p = {r['confidence_p']:.1e})")
        verdict = "DRIFTED: " + "; ".join(reasons) if reasons else "like the validation rows"
        lines.append(f"{name}: {r['flagged']} of {r['values']} value(s) flagged ({r['flag_rate']:.1%}, "
                     f"{r['expected_rate']:.1%} expected): {verdict}")
    return lines


def flag_section(rates: dict[str, dict[str, Any]], dropped: bool, drifted: list[str]) -> str:
    """The report's markdown section on the values the gate flagged (``drifted``: the inputs fused as
    missing in every row because their column drifted)."""
    lines = ["| input | values | flagged | share | expected | drift p | confidence (validation) "
             "| confidence p | drifted |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {n} | {r['values']} | {r['flagged']} | {r['flag_rate']:.1%} | {r['expected_rate']:.1%} | "
              f"{r['drift_p']:.1e} | {_confidence_cell(r)} | {r.get('confidence_p', float('nan')):.1e} | "
              f"{'**yes**' if r['drifted'] else 'no'} |" for n, r in rates.items()]
    action = ("a flagged value was fused as if missing (`ood.action: drop`)" if dropped
              else "flags are reported only (`ood.action: flag`)")
    return ("Values whose embedding lies farther from every training class than the `ood.quantile` of the "
            f"validation values are flagged (so about 1 - quantile of in-distribution values are); {action}. "
            f"A column drifted when so many flags had a chance below {DRIFT_P:g} on rows like the "
            "validation rows (beta-binomial: the threshold is estimated from the validation values), or "
            "when the model given that input alone is that unlikely to be so unsure (its mean top-class "
            "probability against the validation rows', one-sided Welch test)."
            + (" Drifted, so fused as missing in every row (`ood.drifted_columns: drop`): "
               f"{', '.join(drifted)}."
               if drifted else "") + "\n\n" + "\n".join(lines))


def _confidence_cell(rate: dict[str, Any]) -> str:
    if "confidence" not in rate:
        return "-"
    return f"{rate['confidence']:.2f} ({rate['expected_confidence']:.2f})"


def row_flags(ratios: dict[str, Tensor], present: dict[str, Tensor], drop: bool) -> list[dict[str, Any]]:
    """Per row, {input: {"score", "flagged", "weight"}} for each fitted input present in the row: the
    score ratio (above 1: flagged) and the weight the fusion gave the value (0: fused as missing)."""
    if not ratios:
        return []
    kept = gated_presence(ratios, present) if drop else present  # what the gate gave the fusion
    names = sorted(ratios)
    rows: list[dict[str, Any]] = [{} for _ in range(len(ratios[names[0]]))]
    for name in names:
        for i, (ratio, here, keep) in enumerate(zip(ratios[name].tolist(), present[name].tolist(),
                                                   kept[name].tolist(), strict=True)):
            if here:
                rows[i][name] = {"score": round(ratio, 3), "flagged": ratio > 1,
                                 "weight": 1.0 if keep else 0.0}
    return rows


def row_note(flags: dict[str, Any]) -> str:
    """One row's flags in words: "audio looks unlike the training audio (score 4.2, over 1 flags):
    weight 0 (fused as missing)"; empty when nothing is flagged."""
    parts = []
    for name, flag in flags.items():
        if flag["flagged"]:
            fate = "weight 0 (fused as missing)" if flag["weight"] == 0 else "kept (no other input to use)"
            parts.append(f"{name} looks unlike the training {name} (score {flag['score']:.2f}, "
                         f"over 1 flags): {fate}")
    return "; ".join(parts)


def flag_columns(ratios: dict[str, Tensor], present: dict[str, Tensor], drop: bool) -> dict[str, list[Any]]:
    """Table columns of the flags: ``ood_score_<input>`` (the score ratio, empty where the value is missing),
    ``ood_weight_<input>`` (1 or 0) and ``ood_note``; nothing for a model without fitted scores."""
    flags = row_flags(ratios, present, drop)
    if not flags:
        return {}
    columns: dict[str, list[Any]] = {}
    for name in sorted(ratios):
        columns[f"ood_score_{name}"] = [f[name]["score"] if name in f else None for f in flags]
        columns[f"ood_weight_{name}"] = [f[name]["weight"] if name in f else None for f in flags]
    columns["ood_note"] = [row_note(f) for f in flags]
    return columns
