"""Per-row OOD flags: each fitted input's score and fusion weight, in words and as table columns."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from omnifuse.ood.gate import gated_presence


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
