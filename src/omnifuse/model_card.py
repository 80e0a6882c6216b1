"""The README.md model card written into every model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnifuse.config import Config
from omnifuse.tasks.base import Task
from omnifuse.version import __version__

_HEADLINE = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "roc_auc",
    "micro_f1",
    "subset_accuracy",
    "rmse",
    "mae",
    "r2",
)


def render_model_card(config: Config, task: Task, metrics: dict[str, Any]) -> str:
    """Markdown: inputs, task, headline metrics, how to load and predict."""
    lines = [
        f"# omnifuse model: predicts `{config.label.column}` ({task.name})",
        "",
        f"Trained with omnifuse {__version__}. Fusion: `{config.fusion.name}`.",
        "",
        "## Inputs",
        "",
        "| column | type | encoder | may be empty |",
        "|---|---|---|---|",
    ]
    for name, column in sorted(config.columns.items()):
        if column.type == "ignore":
            continue
        encoder = column.encoder.name if column.encoder else f"{config.tabular.name} (shared tabular)"
        lines.append(
            f"| `{name}` | {column.type} | `{encoder}` | {'yes' if column.allow_missing else 'no'} |"
        )
    if task.classes:
        lines += ["", f"Classes: {', '.join(f'`{c}`' for c in task.classes)}"]
    lines += [
        "",
        f"## Metrics ({metrics.get('split', 'validation')} split)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {metrics[k]:.4f} |" for k in _HEADLINE if isinstance(metrics.get(k), float)]
    lines += [
        "",
        "See `report.md` and `plots/` for the full report.",
        "",
        "## Use",
        "",
        "```python",
        "import omnifuse",
        "predictor = omnifuse.load('path/to/this/folder')",
        "predictor.predict([{...one row with the input columns...}])",
        "```",
        "",
        "```bash",
        "omnifuse predict --model path/to/this/folder --data table.csv --out predictions.csv",
        "```",
        "",
        "File paths in image/audio columns are resolved relative to the table's folder.",
        "The folder holds no pickle: config.yaml, preprocessors.json (+ assets/), model.safetensors.",
    ]
    return "\n".join(lines) + "\n"


def write_model_card(folder: Path, config: Config, task: Task, metrics: dict[str, Any]) -> Path:
    """Writes ``folder/README.md``."""
    path = folder / "README.md"
    path.write_text(render_model_card(config, task, metrics), encoding="utf-8")
    return path
