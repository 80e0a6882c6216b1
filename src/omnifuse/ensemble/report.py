"""What an ensemble folder says about itself: metrics.json, report.md (+ plots/) and README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from omnifuse.artifacts.model_card import render_model_card
from omnifuse.config.sections import Config
from omnifuse.ensemble.layout import ENSEMBLE, MEMBERS
from omnifuse.evaluation.report import format_value, write_report
from omnifuse.tasks.base import Task
from omnifuse.training.checkpoint import atomic_write


def members_table(members: list[dict[str, Any]], metric: str) -> str:
    """Markdown: a row per member (fusion, seed, weight, validation and test score, seconds, epochs, stop)."""
    lines = [f"| member | fusion | seed | weight | valid {metric} | test {metric} | seconds | best epoch "
             "| stopped |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for m in members:
        lines.append(f"| `{m['path']}` | {m['fusion']} | {m['seed']} | {m['weight']} | "
                     f"{format_value(m['valid_score'])} | {format_value(m.get('test_score'))} | "
                     f"{m['seconds']:.1f} | {m['best_epoch']} of {m['epochs']} | {m['stop_reason']} |")
    return "\n".join(lines)


def selection_text(summary: dict[str, Any]) -> str:
    """Markdown: how the members were chosen, and the ensemble's validation score against the best member."""
    metric = summary["metric"]
    best_member = max((m["valid_score"] for m in summary["members"] if m["valid_score"] is not None),
                      default=None, key=lambda v: v if summary["mode"] == "max" else -v)
    picks = ", ".join(str(p) for p in summary["selection"]["picks"])
    return (
        f"Greedy forward selection with replacement (Caruana et al. 2004) over {len(summary['members'])} "
        f"member(s), {summary['selection']['rounds']} round(s), on the validation rows by {metric} (ties: "
        f"the lower validation loss); the shortest best prefix of the picks is kept: members {picks}. A "
        "member's weight is how often it was picked; the ensemble averages the members' "
        f"{'predictions' if summary['task'] == 'regression' else 'probabilities'} with these weights.\n\n"
        f"Validation {metric}: ensemble **{format_value(summary['valid_score'])}**, best member "
        f"{format_value(best_member)}."
    )


def budget_text(summary: dict[str, Any]) -> str:
    """Markdown: the time limit and what was trained within it."""
    budget = summary["budget"]
    limit = f"{budget['time_limit']:g} s" if budget["time_limit"] else "none"
    return (f"Time limit: {limit}; {budget['trained']} of {budget['planned']} planned member(s) trained in "
            f"{budget['seconds']:.1f} s. {budget['note']}").strip()


def write_reports(folder: Path, config: Config, task: Task, metrics: dict[str, Any], summary: dict[str, Any],
                  logits: Tensor, targets: Tensor) -> None:
    """Writes metrics.json, report.md with its plots, and README.md (the model card) of an ensemble.

    Args:
        folder: the ensemble folder.
        config: the members' shared config (the first member's).
        task: the fitted task.
        metrics: ``task.metrics`` of the ensemble on ``summary["split"]``.
        summary: what ensemble.json holds (members, selection, budget, scores).
        logits, targets: the ensemble's pseudo-logits and the targets on that split (for the plots).
    """
    import json

    payload = {"split": summary["split"], "preset": "best", **metrics,
               "ensemble_valid_score": summary["valid_score"]}
    text = json.dumps(payload, indent=2, default=str)
    atomic_write(folder / "metrics.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    sections = {
        "Members": members_table(summary["members"], summary["metric"]),
        "Ensemble selection": selection_text(summary),
        "Time budget": budget_text(summary),
        "What the preset did": "\n".join(f"- {note}" for note in summary["notes"]),
    }
    title = f"Ensemble of {_count(summary)} model(s) ({summary['split']} split)"
    write_report(folder, metrics, task, title=title,
                 probabilities=task.probabilities(logits).numpy(), targets=targets.numpy(),
                 extra_sections=sections)
    card = render_model_card(config, task, payload).replace(
        f"Fusion: `{config.fusion.name}`.", "An ensemble: see below.")
    card += "\n" + "\n".join([
        "## Ensemble", "", f"{_count(summary)} member model(s) in `{MEMBERS}/<i>/` (ordinary model folders), "
        f"averaged with the weights in `{ENSEMBLE}`; `manifest.json` covers `{ENSEMBLE}` and each member's "
        "manifest. Explain, embed, export and serve work on one member, e.g. "
        f"`omnifuse explain --model path/to/this/folder/{MEMBERS}/0`.", "",
        members_table(summary["members"], summary["metric"]), ""])
    (folder / "README.md").write_text(card, encoding="utf-8")


def _count(summary: dict[str, Any]) -> int:
    return sum(1 for m in summary["members"] if m["weight"] > 0)
