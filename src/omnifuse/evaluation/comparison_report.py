"""The comparison's outputs: mean ± std per method, the verdict, a rich table, comparison.png and report.md.

Layout of the two CSV files ``omnifuse compare`` writes:

- ``results.csv``: one row per method and seed (``status`` ok), or one row per skipped method
  (``status`` skipped, ``reason`` says why, numbers empty), and one row per classical baseline (``kind``
  baseline, ``method`` "baseline: <name>", fitted once: no run or seed, std 0; see ``omnifuse.baselines``).
  Columns: ``method``, ``kind`` (unimodal, fusion or baseline), ``run`` (0, 1, ...), ``seed``, ``status``,
  ``reason``, the headline metrics (accuracy and
  macro_f1, rmse, or macro_f1), ``params``, ``train_s``, ``ms_per_row``, ``best_epoch`` and, per input,
  ``missing_<input>`` and ``corrupted_<input>`` (the headline metric with that input missing or corrupted).
- ``summary.csv``: one row per method, in the same order: ``method``, ``kind``, ``status``, ``reason``,
  ``seeds`` (finished runs) and ``<column>_mean`` / ``<column>_std`` for every number of results.csv.
  The std is the sample standard deviation over seeds (ddof=1), 0 with a single seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from omnifuse.evaluation.report import _figure, _save

ID_COLUMNS = ("method", "kind", "run", "seed", "status", "reason")
UNIMODAL, FUSION, BASELINE = "unimodal", "fusion", "baseline"
OK, SKIPPED = "ok", "skipped"
COLOURS = {UNIMODAL: "tab:orange", FUSION: "tab:blue", BASELINE: "tab:grey"}
TIMING_BATCH = 64  # batch size of the inference timing, stated in the report


@dataclass
class ComparisonInfo:
    """What the report needs to know about the comparison besides the numbers."""

    task: str  # binary | multiclass | multilabel | regression
    metric: str  # the headline metric: accuracy, rmse or macro_f1
    mode: str  # "max" when higher is better, "min" when lower is
    metrics: list[str]  # every metric column of results.csv, headline first
    inputs: list[str]  # the model inputs of the data, sorted
    seeds: list[int]  # the training seeds of each method
    n_test: int  # test rows


# -- aggregation --------------------------------------------------------------------------------
def _mean_std(values: pd.Series) -> tuple[float, float]:
    numbers = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if numbers.empty:
        return math.nan, math.nan
    return float(numbers.mean()), float(numbers.std(ddof=1)) if len(numbers) > 1 else 0.0


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per method (first-seen order) with ``<column>_mean`` and ``<column>_std`` of every number.

    Args:
        results: one row per method and seed, as in results.csv (skipped methods: status "skipped").
    Returns:
        The summary.csv frame (see the module docstring).
    """
    numeric = [c for c in results.columns if c not in ID_COLUMNS]
    rows: list[dict[str, Any]] = []
    for method, group in results.groupby("method", sort=False):
        ok = group[group["status"] == OK]
        reasons = [str(r) for r in group["reason"] if isinstance(r, str) and r]
        row: dict[str, Any] = {
            "method": method,
            "kind": group["kind"].iloc[0],
            "status": OK if len(ok) else str(group["status"].iloc[0]),
            "reason": reasons[0] if reasons else "",
            "seeds": len(ok),
        }
        for column in numeric:
            row[f"{column}_mean"], row[f"{column}_std"] = _mean_std(ok[column])
        rows.append(row)
    return pd.DataFrame(rows)


def _best(frame: pd.DataFrame, metric: str, mode: str) -> pd.Series:
    scores = frame[f"{metric}_mean"].astype(float)
    position = int(np.nanargmax(scores) if mode == "max" else np.nanargmin(scores))
    return frame.iloc[position]


def verdict(summary: pd.DataFrame, metric: str, mode: str) -> str:
    """Which fusion won, by how much over the best unimodal baseline, and whether that beats the seed spread;
    then how the best trained method compares with the best classical baseline, when there are baselines.

    The gain is the difference of the means (positive: fusion better, for rmse a lower error); it counts
    as a win only when larger than the seed-to-seed spread, the larger of the two standard deviations.
    """
    return (_fusion_verdict(summary, metric, mode) + " " + _baseline_verdict(summary, metric, mode)).strip()


def _baseline_verdict(summary: pd.DataFrame, metric: str, mode: str) -> str:
    """The best trained method against the best classical baseline ("" without baselines)."""
    ok = summary[(summary["status"] == OK) & summary[f"{metric}_mean"].notna()]
    baselines, trained = ok[ok["kind"] == BASELINE], ok[ok["kind"] != BASELINE]
    if baselines.empty or trained.empty:
        return ""
    b, t = _best(baselines, metric, mode), _best(trained, metric, mode)
    gain = float(t[f"{metric}_mean"] - b[f"{metric}_mean"]) * (1 if mode == "max" else -1)
    head = (f"The best classical baseline is **{b['method']}**: {float(b[f'{metric}_mean']):.4f} "
            f"(fitted once); the best trained method, **{t['method']}**, ")
    if gain > 0:
        return head + f"beats it by {gain:.4f}."
    if gain == 0:
        return head + "ties with it."
    return head + f"is {-gain:.4f} worse: the trained models lose to a classical baseline."


def _fusion_verdict(summary: pd.DataFrame, metric: str, mode: str) -> str:
    """The fusion-versus-unimodal part of ``verdict``."""
    ok = summary[(summary["status"] == OK) & summary[f"{metric}_mean"].notna()]
    fused, single = ok[ok["kind"] == FUSION], ok[ok["kind"] == UNIMODAL]
    if fused.empty:
        return "No fusion method finished, so there is no winner to report."
    f = _best(fused, metric, mode)
    better = "higher" if mode == "max" else "lower"
    head = (
        f"The best fusion is **{f['method']}**: {metric} {_pm(f, metric)} "
        f"(mean ± std over {int(f['seeds'])} seed(s); {better} is better)."
    )
    if single.empty:
        return head + " There is no unimodal baseline to compare it with."
    u = _best(single, metric, mode)
    gain = float(f[f"{metric}_mean"] - u[f"{metric}_mean"]) * (1 if mode == "max" else -1)
    spread = max(float(f[f"{metric}_std"]), float(u[f"{metric}_std"]))
    text = f"{head} The best unimodal baseline is **{u['method']}**: {_pm(u, metric)}. "
    if gain <= 0:
        behind = "ties with it" if gain == 0 else f"is {-gain:.4f} worse"
        return text + f"{f['method']} does not beat it ({behind}): fusion did **not** win."
    if gain > spread:
        return text + (
            f"{f['method']} beats it by {gain:.4f}, more than the seed-to-seed spread ({spread:.4f}, the "
            f"larger of the two standard deviations): fusion **won**." + _single_seed_note(f, u)
        )
    return text + (
        f"{f['method']} is ahead by {gain:.4f}, which is within the seed spread ({spread:.4f}, the larger "
        "of the two standard deviations): not clear evidence that fusion helps; run more seeds."
    )


def _single_seed_note(f: pd.Series, u: pd.Series) -> str:
    if min(int(f["seeds"]), int(u["seeds"])) < 2:
        return " With a single seed there is no spread to measure; run more seeds to be sure."
    return ""


def _pm(row: pd.Series, column: str, digits: int = 4) -> str:
    mean, std = row.get(f"{column}_mean"), row.get(f"{column}_std")
    if mean is None or pd.isna(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {0.0 if pd.isna(std) else std:.{digits}f}"


def _params(value: Any) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    number = float(value)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return f"{number:.0f}"


def _num(value: Any, digits: int) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


# -- the table ----------------------------------------------------------------------------------
def score_rows(summary: pd.DataFrame, info: ComparisonInfo) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the finished methods: metrics as mean ± std, params, train s, ms/row."""
    header = ["method", "kind", *info.metrics, "params", "train s", "ms/row"]
    rows: list[list[str]] = []
    for _, row in summary[summary["status"] == OK].iterrows():
        cells = [str(row["method"]), str(row["kind"]), *[_pm(row, m, 3) for m in info.metrics]]
        cells += [_params(row["params_mean"]), _num(row["train_s_mean"], 1), _num(row["ms_per_row_mean"], 3)]
        rows.append(cells)
    return header, rows


def robustness_rows(summary: pd.DataFrame, info: ComparisonInfo) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the robustness scores (means over seeds): clean, ``no X``, ``noisy X``."""
    header = ["method", "kind", f"clean {info.metric}"]
    header += [f"{label} {name}" for name in info.inputs for label in ("no", "noisy")]
    rows: list[list[str]] = []
    trained = summary[(summary["status"] == OK) & (summary["kind"] != BASELINE)]  # baselines: no robustness
    for _, row in trained.iterrows():
        cells = [str(row["method"]), str(row["kind"]), _num(row[f"{info.metric}_mean"], 3)]
        for name in info.inputs:
            cells += [_num(row.get(f"missing_{name}_mean"), 3), _num(row.get(f"corrupted_{name}_mean"), 3)]
        rows.append(cells)
    return header, rows


def skipped_methods(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, reason) of every method that was not trained."""
    rows = summary[summary["status"] != OK]
    return [(str(m), str(r)) for m, r in zip(rows["method"], rows["reason"], strict=True)]


def _rich(title: str, header: list[str], rows: list[list[str]]) -> Table:
    """A rich table without the kind column; unimodal baselines in orange, classical baselines dimmed."""
    table = Table(title=title)
    for i, name in enumerate(header):
        if i != 1:
            table.add_column(name, justify="left" if i == 0 else "right", style="bold" if i == 0 else None)
    for cells in rows:
        table.add_row(*(c for i, c in enumerate(cells) if i != 1),
                      style={UNIMODAL: "dark_orange", BASELINE: "dim"}.get(cells[1]))
    return table


def comparison_tables(summary: pd.DataFrame, info: ComparisonInfo) -> list[Table]:
    """Rich tables for the terminal: the scores (mean ± std over seeds), the robustness scores (``no``:
    input missing, ``noisy``: input corrupted, in the headline metric) and the skipped methods if any."""
    tables = [
        _rich(f"Test scores over {len(info.seeds)} seed(s), {info.n_test} rows (unimodal in orange, "
              "classical baselines dimmed)",
              *score_rows(summary, info)),
        _rich(f"Robustness: test {info.metric} with one input missing (no) or corrupted (noisy)",
              *robustness_rows(summary, info)),
    ]
    skipped = skipped_methods(summary)
    if skipped:
        table = Table(title="Skipped methods")
        table.add_column("method", style="bold")
        table.add_column("reason")
        for method, reason in skipped:
            table.add_row(method, reason)
        tables.append(table)
    return tables


# -- the plot -----------------------------------------------------------------------------------
def plot_comparison(summary: pd.DataFrame, info: ComparisonInfo, path: Path) -> Path:
    """Two panels: the headline metric per method with seed error bars (unimodal orange, fusion blue,
    classical baselines grey), and grouped bars of the trained methods' robustness scores (clean, each input
    missing, each input corrupted)."""
    from matplotlib.patches import Patch

    ok = summary[summary["status"] == OK].reset_index(drop=True)
    names = [str(m) for m in ok["method"]]
    positions = np.arange(len(names))
    fig = _figure(max(8.0, 2.6 + 0.8 * len(names)), 8.0)
    top, bottom = fig.subplots(2, 1)
    means = ok[f"{info.metric}_mean"].astype(float).to_numpy()
    stds = ok[f"{info.metric}_std"].astype(float).fillna(0.0).to_numpy()
    top.bar(positions, means, yerr=stds, capsize=4, color=[COLOURS.get(k, "grey") for k in ok["kind"]])
    top.set_xticks(positions, labels=names, rotation=30, ha="right")
    top.set_ylabel(f"test {info.metric}")
    top.set_title(f"Test {info.metric} (mean ± std over {len(info.seeds)} seed(s))")
    top.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()], loc="lower right")
    ok = ok[ok["kind"] != BASELINE].reset_index(drop=True)  # classical baselines have no robustness scores
    names, positions = [str(m) for m in ok["method"]], np.arange(len(ok))
    means = ok[f"{info.metric}_mean"].astype(float).to_numpy()
    conditions = [(info.metric, "clean", "tab:grey", "")]
    for i, name in enumerate(info.inputs):
        colour = f"C{i % 10}"
        conditions += [(f"missing_{name}", f"no {name}", colour, ""), (f"corrupted_{name}", f"noisy {name}",
                                                                          colour, "//")]
    width = 0.8 / len(conditions)
    for i, (column, label, colour, hatch) in enumerate(conditions):
        values = ok[f"{column}_mean"].astype(float).to_numpy() if f"{column}_mean" in ok else means * np.nan
        bottom.bar(positions - 0.4 + width * (i + 0.5), values, width, label=label, color=colour,
                   hatch=hatch, alpha=0.55 if hatch else 1.0, edgecolor="white" if not hatch else "black")
    bottom.set_xticks(positions, labels=names, rotation=30, ha="right")
    bottom.set_ylabel(f"test {info.metric}")
    bottom.set_title("Robustness (solid: input missing, hatched: input corrupted)")
    bottom.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


# -- report.md ----------------------------------------------------------------------------------
def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---" if i < 2 else "---:" for i in range(len(header))]
    return [line(header), "|" + "|".join(align) + "|", *[line(r) for r in rows]]


CORRUPTION_NOTE = (
    "`no X`: the input's presence is False for every test row. `noisy X`: float tensors get Gaussian noise "
    "with the std of the tensor's values in the batch; uint8 pixels noise of std 64, clipped to 0..255; "
    "token and category ids have 30% of their real tokens replaced by random ids from the range seen in the "
    "batch; masks are unchanged (see `omnifuse.evaluation.robustness`). Both are in the headline metric."
)


def write_comparison_report(out: Path, summary: pd.DataFrame, info: ComparisonInfo) -> Path:
    """Writes ``out/report.md``: verdict, results table and plot, robustness, skipped methods, files."""
    lines = [
        "# Fusion comparison",
        "",
        f"Task: **{info.task}**; headline metric **{info.metric}** "
        f"({'higher' if info.mode == 'max' else 'lower'} is better) on {info.n_test} test rows; "
        f"{len(info.seeds)} seed(s) per method ({', '.join(str(s) for s in info.seeds)}).",
        "",
        "## Verdict",
        "",
        verdict(summary, info.metric, info.mode),
        "",
        "## Results",
        "",
        "Mean ± std over seeds; train s: training time in seconds; ms/row: inference time per test row "
        f"(batch {TIMING_BATCH}, median of a few passes). Rows `baseline: ...` are classical baselines "
        "(scikit-learn on classical features, `baseline.enabled`), fitted once: seed-independent, std 0.",
        "",
        *_markdown_table(*score_rows(summary, info)),
        "",
        *(["![Comparison](comparison.png)", ""] if (summary["status"] == OK).any() else []),
        "## Robustness",
        "",
        CORRUPTION_NOTE,
        "",
        *_markdown_table(*robustness_rows(summary, info)),
        "",
    ]
    skipped = skipped_methods(summary)
    if skipped:
        lines += ["## Skipped", "", *[f"- **{m}**: {r}" for m, r in skipped], ""]
    lines += [
        "## Files",
        "",
        "- `results.csv`: one row per method and seed; a skipped method has one row with its reason.",
        "- `summary.csv`: one row per method, `<column>_mean` and `<column>_std` (sample std over seeds).",
        "- `runs/<method>/seed<i>/`: the checkpoints and training log of each run.",
        "",
    ]
    path = Path(out) / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
