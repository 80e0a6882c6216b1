"""Per-column drift: the share of flagged values and the alone confidence against the validation rows'."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from omnifuse.ood.gate import ReliabilityGate

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

