"""The baselines in reports: the one-line verdict, the "Baselines" section, a CSV, a bar chart, a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from omnifuse.evaluation.report import _figure, _save

HEADLINE = {"regression": ("rmse", "mae", "r2"), "multilabel": ("macro_f1", "micro_f1")}
CLASSIFICATION = ("accuracy", "macro_f1")
FIXES = ("more epochs (`training.epochs`), augmentation (`columns.<name>.augment`), a pretrained encoder "
         "(hf_text, efficientnet_lite0, hf_audio), or `omnifuse tune`")
PLOT = "plots/baselines.png"


def metric_names(baselines: dict[str, Any]) -> tuple[str, ...]:
    """The metric columns shown for the baselines, the headline (``baselines["metric"]``) first."""
    names = HEADLINE.get(_task_of(baselines), CLASSIFICATION)
    return (baselines["metric"], *(n for n in names if n != baselines["metric"]))


def _task_of(baselines: dict[str, Any]) -> str:
    return {"rmse": "regression", "macro_f1": "multilabel"}.get(baselines["metric"], "classification")


def number(value: Any) -> str:
    """A metric for a sentence or a table: 3 decimals (4 significant digits when large), n/a for None."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


def short_name(name: str) -> str:
    """A baseline's name without brackets and commas: "fused (linear)" -> "fused linear"."""
    return name.replace("(", "").replace(")", "").replace(",", "")


def best(baselines: dict[str, Any]) -> dict[str, Any] | None:
    """The best baseline's result (``baselines["best"]``), or None."""
    return next((r for r in baselines.get("results", []) if r["name"] == baselines.get("best")), None)


def top_line(metrics: dict[str, Any], baselines: dict[str, Any]) -> str | None:
    """The report's first line: the model against the best baseline, in the headline metric.

    "model 0.873 vs best baseline 0.968 (fused linear): the model is worse than a linear baseline; try ..."
    or "model 0.950 beats the best baseline 0.930 (fused linear) by 0.020". None when either score is missing.
    """
    metric, mode, winner = baselines["metric"], baselines["mode"], best(baselines)
    model = metrics.get(metric)
    if winner is None or model is None or winner.get(metric) is None:
        return None
    floor = float(winner[metric])
    gain = (float(model) - floor) * (1.0 if mode == "max" else -1.0)
    where = f"{baselines['split']} {metric}"
    if baselines.get("reused"):
        where += ", baselines of the training run"
    head = f"**Baseline check** ({where}): model {number(model)}"
    name = short_name(winner["name"])
    if gain > 0:
        return f"{head} beats the best baseline {number(floor)} ({name}) by {number(gain)}."
    kind = "gradient-boosting" if winner["model"] == "gradient boosting" else "linear"
    verb = "is no better than" if gain == 0 else "is worse than"
    return (f"{head} vs best baseline {number(floor)} ({name}): the model {verb} a {kind} baseline. "
            f"Try {FIXES}.{_single_inputs_ahead(model, baselines)}")


def _single_inputs_ahead(model: float, baselines: dict[str, Any]) -> str:
    """A sentence naming the single-input baselines that beat the model alone, if any."""
    metric, sign = baselines["metric"], 1.0 if baselines["mode"] == "max" else -1.0
    ahead = [r for r in baselines["results"] if len(r["inputs"]) == 1 and r.get(metric) is not None
             and (float(r[metric]) - float(model)) * sign > 0]
    if not ahead:
        return ""
    shown = ", ".join(f"{r['name']} {number(r[metric])}" for r in ahead)
    return f" Alone, these beat the model: {shown}; look at those inputs' encoders first."


def summary_line(baselines: dict[str, Any]) -> str:
    """One line for the console: the best baseline and the time taken, or why there is none."""
    winner = best(baselines)
    if winner is None:
        reason = "; ".join(baselines.get("notes", [])) or "no baseline could be fitted"
        return f"Baselines: none ({reason})"
    metric = baselines["metric"]
    return (f"Baselines: best {winner['name']}, {baselines['split']} {metric} {number(winner[metric])} "
            f"({len(baselines['results'])} fitted in {baselines.get('seconds', 0.0):.1f} s)")


def results_frame(baselines: dict[str, Any]) -> pd.DataFrame:
    """One row per baseline: name, inputs ("a+b"), features, model, choice, metrics, features_s, fit_s."""
    rows = [{**r, "inputs": "+".join(r["inputs"])} for r in baselines.get("results", [])]
    columns = ["name", "inputs", "features", "model", "choice", *metric_names(baselines)]
    columns += ["features_s", "fit_s"]
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame:
            frame[column] = None
    return frame[columns + [c for c in frame.columns if c not in columns]]


def section(baselines: dict[str, Any], metrics: dict[str, Any] | None = None, plot: str | None = PLOT) -> str:
    """The markdown body of the "Baselines" section: what was fitted, the table, the plot and the notes."""
    rows = baselines.get("rows", {})
    split = baselines["split"]
    source = baselines.get("source") or "the table"
    lines = [
        f"Classical features with scikit-learn models, fitted on {rows.get('train', 'n/a')} training rows "
        f"(regularisation chosen on {rows.get('valid', 'n/a')} validation rows) and scored on the "
        f"{rows.get(split, 'n/a')} {split} rows of `{source}` with the model's own metrics; "
        f"{baselines.get('seconds', 0.0):.1f} s in all (s: computing a baseline's features plus fitting its "
        "grid). Turn them off with `baseline.enabled: false`.",
        "",
    ]
    names = metric_names(baselines)
    header = ["baseline", "inputs", "features", "model", "chosen", *names, "s"]
    align = ["---"] * 5 + ["---:"] * (len(names) + 1)
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    if metrics is not None:
        scores = " | ".join(number(metrics.get(n)) for n in names)
        lines.append(f"| **the model** | | | | | {scores} | |")
    for r in baselines.get("results", []):
        cells = [r["name"], "+".join(r["inputs"]), r["features"], r["model"], r["choice"],
                 *(number(r.get(n)) for n in names), f"{r['features_s'] + r['fit_s']:.2f}"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if plot and baselines.get("results"):
        lines += ["", f"![Baselines]({plot})"]
    notes = baselines.get("notes", [])
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else []))


def plot_baselines(baselines: dict[str, Any], path: Path, model: float | None = None) -> Path | None:
    """A bar per baseline in the headline metric, the model's in another colour; None without results."""
    metric = baselines["metric"]
    bars = [(r["name"], float(r[metric]), "tab:grey") for r in baselines.get("results", [])
            if r.get(metric) is not None]
    if not bars:
        return None
    if model is not None:
        bars.insert(0, ("the model", float(model), "tab:blue"))
    fig = _figure(7.0, 1.0 + 0.4 * len(bars))
    ax = fig.add_subplot()
    positions = list(range(len(bars)))[::-1]
    ax.barh(positions, [b[1] for b in bars], color=[b[2] for b in bars])
    ax.set_yticks(positions, labels=[b[0] for b in bars])
    for position, (_, value, _) in zip(positions, bars, strict=True):
        ax.text(value, position, f" {number(value)}", va="center", fontsize=8)
    ax.set_xlim(0.0, 1.12 * max(max(b[1] for b in bars), 1e-9))  # room for the value labels
    ax.set_xlabel(f"{baselines['split']} {metric}")
    ax.set_title(f"Baselines ({'higher' if baselines['mode'] == 'max' else 'lower'} is better)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


def report_parts(metrics: dict[str, Any], baselines: dict[str, Any], out: Path) -> tuple[str | None, str]:
    """(top line, "Baselines" section) of a train/evaluate report; draws ``out/plots/baselines.png``."""
    plotted = plot_baselines(baselines, out / PLOT, metrics.get(baselines["metric"]))
    return top_line(metrics, baselines), section(baselines, metrics, PLOT if plotted else None)


def rich_table(baselines: dict[str, Any]) -> Table:
    """The results as a rich table for the terminal, best first."""
    names = metric_names(baselines)
    table = Table(title=f"Baselines on the {baselines['split']} split ({baselines['metric']}, "
                        f"{'higher' if baselines['mode'] == 'max' else 'lower'} is better)")
    for column in ("baseline", "chosen", *names, "s"):
        table.add_column(column, justify="left" if column in ("baseline", "chosen") else "right")
    for r in baselines.get("results", []):
        style = "bold" if r["name"] == baselines.get("best") else None
        table.add_row(r["name"], r["choice"], *(number(r.get(n)) for n in names),
                      f"{r['features_s'] + r['fit_s']:.1f}", style=style)
    return table


def comparison_rows(baselines: dict[str, Any], metrics: list[str]) -> list[dict[str, Any]]:
    """The baselines as rows of `omnifuse compare`'s results.csv: kind "baseline", one row each (fitted once,
    seed-independent), method "baseline: <name>", train_s the feature and fitting seconds."""
    return [{"method": f"baseline: {r['name']}", "kind": "baseline", "run": None, "seed": None,
             "status": "ok", "reason": "", **{m: r.get(m) for m in metrics},
             "train_s": r["features_s"] + r["fit_s"]}
            for r in baselines.get("results", [])]


def write_baseline_report(out: Path, baselines: dict[str, Any], task: str) -> Path:
    """``omnifuse baseline``'s outputs: baselines.json, baselines.csv, report.md and plots/baselines.png."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "baselines.json").write_text(json.dumps(baselines, indent=2), encoding="utf-8")
    results_frame(baselines).to_csv(out / "baselines.csv", index=False)
    plotted = plot_baselines(baselines, out / PLOT)
    lines = ["# Baselines", "", f"Task: **{task}**; headline metric **{baselines['metric']}**.", "",
             section(baselines, plot=PLOT if plotted else None), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
