"""What a study reports: trials.csv, the optimisation-history and parameter-importance plots, report.md, the
rich table of the best trials and one line per finished trial.

Trials are Optuna ``FrozenTrial`` objects (read through their public attributes only).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from omnifuse.evaluation.report import _figure, _save

PLOTS = "plots"
HISTORY_PNG = "history.png"
IMPORTANCES_PNG = "importances.png"
FIXED_COLUMNS = ["number", "state", "value", "seconds", "epochs", "best_epoch", "pruned_epoch", "error",
                 "worker", "host"]
TOP_ROWS = 10  # trials listed in report.md


@dataclass(frozen=True)
class StudyInfo:
    """What report.md says about the study besides its trials."""

    study_name: str
    storage: str  # the URL, password hidden
    monitor: str
    direction: str  # maximize | minimize
    best_config: str = ""  # file names relative to the study folder; "" when no trial completed
    best_model: str = ""


STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
          "WAITING": "waiting"}


def _state(trial: Any) -> str:
    name = str(trial.state.name)
    return STATES.get(name, name.lower())


def _seconds(trial: Any) -> float | None:
    duration = trial.duration
    return None if duration is None else round(duration.total_seconds(), 2)


def trials_frame(trials: list[Any]) -> pd.DataFrame:
    """One row per trial: number, state, value, seconds, epochs trained, best and pruned epoch, the error of
    a failed trial, the worker and host that ran it, then one column per searched key (as stored)."""
    rows, keys = [], []
    for trial in trials:
        attrs = trial.user_attrs
        row = {"number": trial.number, "state": _state(trial), "value": trial.value,
               "seconds": _seconds(trial), **{k: attrs.get(k) for k in FIXED_COLUMNS[4:]}}
        row["error"] = attrs.get("error", "")
        keys += [k for k in trial.params if k not in keys]
        rows.append({**row, **trial.params})
    frame = pd.DataFrame(rows, columns=FIXED_COLUMNS + keys)
    for column in ["epochs", "best_epoch", "pruned_epoch", "worker", *keys]:
        values = [row[column] for row in rows if not _missing(row.get(column))]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = frame[column].astype("Int64")  # whole numbers stay whole beside empty cells
    return frame


def ranked(frame: pd.DataFrame, direction: str) -> pd.DataFrame:
    """The complete trials, best first (ties: the earlier trial first)."""
    done = frame[frame["state"] == "complete"]
    return done.sort_values(["value", "number"], ascending=[direction == "minimize", True], kind="stable")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None or value is pd.NA else str(value)


def trial_line(trial: Any, monitor: str, worker: int = 0) -> str:
    """One line for a finished trial: state, value or reason, seconds and its parameters."""
    state = _state(trial)
    if state == "complete":
        detail = f"{monitor} {trial.value:.4f}"
    elif state == "pruned":
        detail = f"pruned after epoch {trial.user_attrs.get('pruned_epoch', '?')}"
    else:
        detail = f"{state}: {trial.user_attrs.get('error', 'an error (see the traceback)')}"
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    where = f" (worker {worker})" if worker else ""
    return f"trial {trial.number}{where}: {detail} in {_seconds(trial) or 0:.1f} s [{params}]"


def best_trials_table(frame: pd.DataFrame, monitor: str, direction: str, rows: int = 5) -> Table:
    """The best complete trials as a rich table."""
    top = ranked(frame, direction).head(rows)
    keys = list(frame.columns[len(FIXED_COLUMNS):])
    table = Table(title=f"Best trials ({direction} {monitor})")
    for column in ["trial", monitor, "seconds", "epochs", *keys]:
        table.add_column(column, justify="left" if column in keys else "right")
    for _, row in top.iterrows():
        table.add_row(str(row["number"]), f"{row['value']:.4f}", _fmt(row["seconds"]), _fmt(row["epochs"]),
                      *[_fmt(row[k]) for k in keys])
    return table


# -- plots ----------------------------------------------------------------------------------------------

def plot_history(trials: list[Any], monitor: str, direction: str, path: Path) -> Path:
    """Each complete trial's value by trial number, pruned trials at their last reported value, and the
    best value so far."""
    from matplotlib.ticker import MaxNLocator

    done = [(t.number, float(t.value)) for t in trials if _state(t) == "complete"]
    pruned = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
              if _state(t) == "pruned" and t.intermediate_values]
    fig = _figure(6.4, 3.8)
    ax = fig.subplots()
    if done:
        ax.scatter(*zip(*done, strict=True), color="tab:blue", label="complete", zorder=3)
        pick = max if direction == "maximize" else min
        numbers = [n for n, _ in done] + [max(t.number for t in trials)]  # the line runs to the last trial
        best = [pick(v for n, v in done if n <= number) for number in numbers]
        ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), color="tab:gray", marker="x", label="pruned (last epoch)")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {monitor}")
    ax.set_title(f"Optimisation history ({direction} {monitor})")
    if done or pruned:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


def param_importances(study: Any) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances (its default evaluator) and, when there are none, why not."""
    import optuna

    complete = [t for t in study.trials if _state(t) == "complete"]
    if len(complete) < 2:
        return {}, (f"Parameter importances need at least 2 complete trials; this study has {len(complete)}. "
                    "Run more trials (the study resumes).")
    try:
        with warnings.catch_warnings():  # e.g. "some regimes have less than 2 trials": said in the report
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        return {}, f"Parameter importances could not be computed: {exc}"
    if not importances:
        return {}, "No searched key took more than one value over the complete trials."
    return dict(importances), ""


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    """A horizontal bar per searched key, the most important on top."""
    names = list(importances)[::-1]
    fig = _figure(6.4, 0.5 * len(names) + 1.5)
    ax = fig.subplots()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (Optuna PED-ANOVA, normalised to sum to 1)")
    ax.set_title("Parameter importances")
    ax.grid(alpha=0.3, axis="x")
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


# -- report.md ------------------------------------------------------------------------------------------

def write_report(out: Path, study: Any, frame: pd.DataFrame, info: StudyInfo) -> Path:
    """Writes ``out/report.md`` with ``out/plots/history.png`` and, with two or more complete trials,
    ``out/plots/importances.png``; returns the report's path."""
    counts = frame["state"].value_counts()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("complete", "pruned", "failed", "running") if
                        counts.get(s, 0) or s != "running")
    lines = ["# Tuning report", "",
             f"Study `{info.study_name}` in `{info.storage}`: {len(frame)} trial(s) ({summary}); "
             f"objective: {info.direction} the validation `{info.monitor}`.", ""]
    lines += _best_section(frame, info)
    plot_history(study.trials, info.monitor, info.direction, out / PLOTS / HISTORY_PNG)
    lines += ["## Optimisation history", "", f"![optimisation history]({PLOTS}/{HISTORY_PNG})", ""]
    importances, reason = param_importances(study)
    lines += ["## Parameter importances", ""]
    if importances:
        plot_importances(importances, out / PLOTS / IMPORTANCES_PNG)
        lines += [f"![parameter importances]({PLOTS}/{IMPORTANCES_PNG})", "",
                  "| key | importance |", "|---|---|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in importances.items()] + [""]
    else:
        lines += [reason, ""]
    lines += _trials_section(frame, info)
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _best_section(frame: pd.DataFrame, info: StudyInfo) -> list[str]:
    top = ranked(frame, info.direction)
    if top.empty:
        return ["**No trial completed**: see the failed trials below.", ""]
    best = top.iloc[0]
    keys = [k for k in frame.columns[len(FIXED_COLUMNS):] if not _missing(best[k])]
    lines = [f"**Best: trial {best['number']}, {info.monitor} {best['value']:.4f}** "
             f"(config `{info.best_config}`, model `{info.best_model}/`).", "",
             "| key | value |", "|---|---|"]
    return lines + [f"| `{k}` | {_fmt(best[k])} |" for k in keys] + [""]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _trials_section(frame: pd.DataFrame, info: StudyInfo) -> list[str]:
    keys = list(frame.columns[len(FIXED_COLUMNS):])
    header = ["trial", info.monitor, "seconds", "epochs", *keys]
    lines = [f"## Best {TOP_ROWS} trials", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in ranked(frame, info.direction).head(TOP_ROWS).iterrows():
        cells = [str(row["number"]), f"{row['value']:.4f}", _fmt(row["seconds"]), _fmt(row["epochs"])]
        lines.append("| " + " | ".join(cells + [_fmt(row[k]) for k in keys]) + " |")
    lines += ["", "Every trial is in `trials.csv`.", ""]
    failed = frame[frame["state"] == "failed"]
    if not failed.empty:
        lines += ["## Failed trials", ""]
        lines += [f"- trial {row['number']}: {row['error'] or 'an error (see the log)'}" for _, row in
                  failed.iterrows()] + [""]
    return lines
