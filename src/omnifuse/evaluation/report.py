"""The evaluation report: report.md with metric tables and PNG plots, and a rich table for the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from omnifuse.evaluation.calibration import ece_of, reliability_bins
from omnifuse.tasks.base import Task
from omnifuse.tasks.regression import RegressionTask

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCALAR_ORDER: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "macro_f1", "weighted_f1", "roc_auc", "log_loss", "ece", "n"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "roc_auc", "log_loss", "ece", "n"),
    "multilabel": ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "n"),
    "regression": ("rmse", "mae", "r2", "n"),
}
MAX_ANNOTATED_CLASSES = 30  # above this, confusion-matrix cells are too small for numbers
MAX_LEGEND_ENTRIES = 15


def format_value(value: Any) -> str:
    """A metric value for a table: floats with 4 decimals, None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def scalar_metrics(metrics: dict[str, Any], task_name: str) -> list[tuple[str, Any]]:
    """(name, value) of the single-number metrics, the task's usual ones first."""
    order = SCALAR_ORDER.get(task_name, ())
    names = [n for n in order if n in metrics]
    names += sorted(
        n for n, v in metrics.items()
        if n not in names and (v is None or isinstance(v, (int, float))) and not isinstance(v, bool)
    )
    return [(n, metrics[n]) for n in names]


def format_metrics_table(metrics: dict[str, Any], task_name: str) -> Table:
    """A rich table of the single-number metrics, for printing in the CLI."""
    table = Table(title=f"{task_name} metrics")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in scalar_metrics(metrics, task_name):
        table.add_row(name, format_value(value))
    return table


# -- plots --------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, outside pyplot's global state (nothing to close, thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    fig.clear()
    return path


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], path: Path) -> Path:
    """Counts annotated in the cells, colours normalised per true class (row), class names on the axes."""
    counts = np.asarray(matrix, dtype=np.float64)  # (C, C) rows: true, columns: predicted
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    size = min(4.0 + 0.4 * len(classes), 20.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=classes, rotation=45, ha="right")
    ax.set_yticks(ticks, labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= MAX_ANNOTATED_CLASSES:
        for (row, col), count in np.ndenumerate(counts):
            colour = "white" if rates[row, col] > 0.5 else "black"
            ax.text(col, row, f"{int(count)}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def roc_columns(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, C) 0/1 matrix of the true classes, from (N,) indices or an (N, C) multi-hot matrix."""
    if targets.ndim == 2:
        return targets.astype(np.int64)
    return (targets.reshape(-1, 1) == np.arange(num_classes)).astype(np.int64)  # (N, C)


def plot_roc(probabilities: np.ndarray, targets: np.ndarray, classes: list[str], path: Path) -> Path | None:
    """ROC curves: the positive class for binary, one-vs-rest per class otherwise, where defined.

    Returns:
        The PNG's path, or None when no class has both positive and negative rows.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    truth = roc_columns(targets, len(classes))  # (N, C)
    wanted = [1] if len(classes) == 2 and targets.ndim == 1 else list(range(len(classes)))
    defined = [c for c in wanted if 0 < truth[:, c].sum() < len(truth)]
    if not defined:
        return None
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    for c in defined:
        fpr, tpr, _ = roc_curve(truth[:, c], probabilities[:, c])
        auc = roc_auc_score(truth[:, c], probabilities[:, c])
        ax.plot(fpr, tpr, label=f"{classes[c]} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves" if len(defined) > 1 else f"ROC curve (positive class {classes[defined[0]]})")
    if len(defined) <= MAX_LEGEND_ENTRIES:
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_reliability(probabilities: np.ndarray, targets: np.ndarray, path: Path) -> Path:
    """Reliability diagram: accuracy against mean top-class probability per confidence bin, with the
    diagonal of perfect calibration and the bins' row counts below."""
    every = reliability_bins(targets, probabilities)
    bins, ece = [b for b in every if b.count], ece_of(every)
    fig = _figure(6.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = [b.upper - b.lower for b in bins]
    top.bar([b.lower for b in bins], [b.accuracy for b in bins], width=width, align="edge",
            edgecolor="black", label="accuracy")
    top.plot([b.confidence for b in bins], [b.accuracy for b in bins], "o", color="tab:red",
             label="(mean confidence, accuracy)")
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability (top class), ECE {ece:.3f}")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b.lower for b in bins], [b.count for b in bins], width=width, align="edge", color="grey")
    bottom.set_xlabel("predicted probability of the top class")
    bottom.set_ylabel("rows")
    bottom.set_xlim(0, 1)
    return _save(fig, path)


def plot_per_class_f1(per_class: dict[str, dict[str, Any]], path: Path) -> Path:
    """A bar per class with its F1."""
    names = list(per_class)
    scores = [per_class[n]["f1"] for n in names]
    fig = _figure(min(4.0 + 0.35 * len(names), 20.0), 4.0)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(names)), scores, color="tab:blue")
    ax.set_xticks(np.arange(len(names)), labels=names, rotation=45, ha="right")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title("F1 per class")
    return _save(fig, path)


def plot_regression(predictions: np.ndarray, truth: np.ndarray, folder: Path) -> list[tuple[str, Path]]:
    """A predicted-vs-true scatter with the diagonal, and a histogram of the residuals."""
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    ax.scatter(truth, predictions, s=10, alpha=0.6)
    low, high = float(min(truth.min(), predictions.min())), float(max(truth.max(), predictions.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true")
    scatter = _save(fig, folder / "predicted_vs_true.png")
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(predictions - truth, bins=min(30, max(5, len(truth) // 5)), color="tab:blue")
    ax.set_xlabel("residual (predicted - true)")
    ax.set_ylabel("rows")
    ax.set_title("Residuals")
    return [("Predicted vs true", scatter), ("Residuals", _save(fig, folder / "residuals.png"))]


def plot_history(history: list[dict[str, Any]], monitor: str, path: Path) -> Path:
    """Train and validation loss per epoch, and the monitored validation metric where recorded."""
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    has_metric = any(h.get(monitor) is not None for h in history)
    fig = _figure(10.0 if has_metric else 5.5, 4.0)
    ax = fig.add_subplot(1, 2 if has_metric else 1, 1)
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        ax.plot(epochs, [_nan(h.get(key)) for h in history], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.legend()
    if has_metric:
        ax = fig.add_subplot(1, 2, 2)
        ax.plot(epochs, [_nan(h.get(monitor)) for h in history], marker="o", color="tab:green")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(monitor)
        ax.set_title(f"valid {monitor}")
    return _save(fig, path)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def make_plots(
    folder: Path,
    metrics: dict[str, Any],
    task: Task,
    probabilities: np.ndarray | None,
    targets: np.ndarray | None,
) -> list[tuple[str, Path]]:
    """Every plot the metrics and arrays allow, as (title, path)."""
    plots: list[tuple[str, Path]] = []
    classes = [str(c) for c in task.classes]
    if "confusion_matrix" in metrics and classes:
        plots.append(("Confusion matrix", plot_confusion_matrix(
            metrics["confusion_matrix"], classes, folder / "confusion_matrix.png")))
    if metrics.get("per_class"):
        plots.append(("F1 per class", plot_per_class_f1(metrics["per_class"], folder / "per_class_f1.png")))
    if probabilities is None or targets is None or len(targets) == 0:
        return plots
    if isinstance(task, RegressionTask):
        import torch

        truth = task.destandardise(torch.as_tensor(targets)).reshape(-1).numpy()
        return plots + plot_regression(np.asarray(probabilities).reshape(-1), truth, folder)
    roc = plot_roc(np.asarray(probabilities), np.asarray(targets), classes, folder / "roc.png")
    plots += [("ROC", roc)] if roc is not None else []
    if np.asarray(targets).ndim == 1:  # single-label classification: one top class per row
        path = plot_reliability(np.asarray(probabilities), np.asarray(targets), folder / "reliability.png")
        plots.append(("Reliability", path))
    return plots


# -- markdown -----------------------------------------------------------------------------------
def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metrics_markdown(metrics: dict[str, Any], task_name: str) -> list[str]:
    """The metrics table and, where there is one, the per-class table."""
    lines = ["## Metrics", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {name} | {format_value(value)} |" for name, value in scalar_metrics(metrics, task_name)]
    per_class = metrics.get("per_class") or {}
    if per_class:
        lines += ["", "## Per class", "", "| class | precision | recall | f1 | support |"]
        lines.append("|---|---:|---:|---:|---:|")
        for name, s in per_class.items():
            values = " | ".join(format_value(s[k]) for k in ("precision", "recall", "f1", "support"))
            lines.append(f"| {_cell(name)} | {values} |")
    return lines + [""]


def write_report(
    out_dir: Path,
    metrics: dict[str, Any],
    task: Task,
    *,
    title: str,
    history: list[dict[str, Any]] | None = None,
    extra_sections: dict[str, str] | None = None,
    probabilities: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    monitor: str | None = None,
    top_line: str | None = None,
) -> Path:
    """Writes ``out_dir/report.md`` and its PNG plots under ``out_dir/plots/``.

    Args:
        out_dir: the folder to write into (created if needed).
        metrics: what ``task.metrics`` returned.
        task: the fitted task (classes, names, de-standardisation).
        title: the report's heading.
        history: per-epoch dicts with ``epoch``, ``train_loss``, ``valid_loss`` and validation metrics.
        extra_sections: {heading: markdown body} appended at the end.
        probabilities: (N, C) ``task.probabilities(logits)`` as numpy (regression: (N, 1) predictions);
            with ``targets``, enables ROC curves and the regression plots.
        targets: the encoded targets as passed to ``task.metrics`` ((N,) class indices, (N, C) multi-hot,
            or (N, 1) standardised values).
        monitor: the metric drawn in the training curves; default ``task.default_monitor()``.
        top_line: a line put before the heading, the first thing a reader sees (the baseline check).

    Returns:
        The path of report.md.
    """
    out_dir = Path(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(plots_dir, metrics, task, probabilities, targets)
    if history:
        monitor = monitor or task.default_monitor()[0]
        plots.append(("Training curves", plot_history(history, monitor, plots_dir / "training_curves.png")))
    lines = ([top_line, ""] if top_line else []) + [f"# {title}", "", f"Task: **{task.name}**", ""]
    lines += metrics_markdown(metrics, task.name)
    if plots:
        lines += ["## Plots", ""]
        for name, path in plots:
            lines += [f"### {name}", "", f"![{name}](plots/{path.name})", ""]
    for heading, body in (extra_sections or {}).items():
        lines += [f"## {heading}", "", body.rstrip(), ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report
