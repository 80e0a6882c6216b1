"""The shift harness of ``omnifuse evaluate --shift-test``: a shifted table's scores beside the test's."""

from __future__ import annotations

from typing import Any

SHIFT_FOLDER = "shift"  # the shifted table's own metrics.json and report.md, under the evaluation folder


def shift_summary(metrics: dict[str, Any], source: str) -> dict[str, Any]:
    """What the main metrics.json keeps of the shifted table's: the headline metric, each input removed,
    and the OOD flag rates per input."""
    ablation = metrics.get("modality_ablation") or []
    summary: dict[str, Any] = {"table": source}
    summary.update({k: v for k, v in metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)})
    if ablation:
        summary["without"] = {row["removed"]: row["value"] for row in ablation[1:]}
    if "ood" in metrics:
        summary["ood"] = metrics["ood"]
    return summary


def shift_section(metrics: dict[str, Any], shifted: dict[str, Any], metric: str) -> str:
    """Markdown: the model and each input removed, on the test table and on the shifted one, then the
    shifted table's flag rates."""
    def without(m: dict[str, Any]) -> dict[str, float]:
        return {row["removed"]: row["value"] for row in (m.get("modality_ablation") or [])[1:]}

    here, there = without(metrics), shifted.get("without", {})
    lines = [f"| model | {metric} (this table) | {metric} (shifted: {shifted.get('table', 'shift')}) |",
             "|---|---|---|", f"| full model | {metrics.get(metric, float('nan')):.4f} | "
             f"{shifted.get(metric, float('nan')):.4f} |"]
    lines += [f"| without {name} | {here.get(name, float('nan')):.4f} | {there.get(name, float('nan')):.4f} |"
              for name in sorted(set(here) | set(there))]
    flags = [f"- {name}: {r['flag_rate']:.1%} of its values flagged on the shifted table "
             f"({r['expected_rate']:.1%} expected){', drifted' if r['drifted'] else ''}"
             for name, r in (shifted.get("ood") or {}).items()]
    return "\n".join(lines + ([""] + flags if flags else []))
