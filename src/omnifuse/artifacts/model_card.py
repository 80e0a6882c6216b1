"""The README.md model card written into every model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnifuse.config.sections import Config
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


_RETRIEVAL = ("recall@1", "recall@5", "recall@10", "mrr", "median_rank", "precision@10", "map")
_LOSSES = {
    "clip": "symmetric InfoNCE (CLIP, https://arxiv.org/abs/2103.00020)",
    "siglip": "pairwise sigmoid (SigLIP, https://arxiv.org/abs/2303.15343)",
}
_QUERY_FLAGS = {"text": '--text "a black ankle boot"', "image": "--image query.png",
                "audio": "--audio query.wav"}


def render_model_card(config: Config, task: Task, metrics: dict[str, Any]) -> str:
    """Markdown: inputs, task, headline metrics, how to load and predict (contrastive models: towers,
    embedding, loss, retrieval metrics, how to embed, index, search and classify zero-shot)."""
    if task.name == "contrastive":
        return _contrastive_card(config, task, metrics)
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


def _modality(config: Config, name: str) -> str:
    return config.columns[name].type if name in config.columns else "tabular"


def _contrastive_card(config: Config, task: Task, metrics: dict[str, Any]) -> str:
    """The card of a contrastive (embedding) model."""
    section = config.contrastive
    assert section is not None, "filled in at load (config.fill_defaults)"
    state = task.state_dict()
    towers = list(state["columns"])
    lines = [
        f"# omnifuse model: contrastive embeddings of {', '.join(f'`{t}`' for t in towers)}",
        "",
        f"Trained with omnifuse {__version__}. One tower per column, each projected to a shared "
        f"{section.embed_dim}-d L2-normalised embedding (cosine similarity = dot product).",
        "",
        "## Towers",
        "",
        "| column | type | encoder |",
        "|---|---|---|",
    ]
    lines += [f"| `{t}` | {_modality(config, t)} | `{config.encoder_of(t).name}` |" for t in towers]
    temperature = ("learnt, starting at " if section.learn_temperature else "fixed at ") + (
        f"{section.temperature:g}" if section.loss == "clip" else "0.1, bias -10")
    lines += ["", "## Training objective", "",
              f"- loss: `{section.loss}`, {_LOSSES[section.loss]}; temperature {temperature}",
              f"- extra negatives from a queue of recent embeddings: {section.queue_size or 'none'}",
              "- rows sharing a label were not each other's negatives" if state["has_labels"]
              else "- trained without labels",
              "- rows with identical content in a column were not each other's negatives"
              if state.get("mask_duplicates", True) else "- identical rows were still negatives"]
    lines += ["", f"## Retrieval metrics ({metrics.get('split', 'validation')} split)", "",
              "Averaged over both directions (and every column pair); recall and MRR count only a row's own "
              "partner as a match, precision@10 and mAP count any item of the query's class.", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {metrics[k]:.4f} |" for k in _RETRIEVAL if isinstance(metrics.get(k), float)]
    lines += [f"| {k} | {v:.4f} |" for k, v in metrics.items()
              if k.endswith("/recall@1") and isinstance(v, float)]
    return "\n".join(lines + _contrastive_use(config, towers)) + "\n"


def _contrastive_use(config: Config, towers: list[str]) -> list[str]:
    """The "Use" section of a contrastive card: embed, index, search, zero-shot."""
    items = next((t for t in towers if _modality(config, t) != "text"), towers[-1])
    query = next((t for t in towers if t != items and _modality(config, t) in _QUERY_FLAGS), None)
    size = config.contrastive.embed_dim if config.contrastive else "D"
    folder = "--model path/to/this/folder --data table.csv"
    lines = ["", "See `report.md` for the full report. This model predicts nothing: it embeds.", "",
             "## Use", "", "```python", "import omnifuse", "predictor = omnifuse.load('path/to/this/folder')",
             f"vectors = predictor.embed(rows, column='{items}')  # (N, {size}), L2-normalised", "```", "",
             "```bash", f"omnifuse embed {folder} --column {items} --out vectors.parquet",
             f"omnifuse index {folder} --column {items} --out index/"]
    if query is not None:
        lines.append(f"omnifuse search --index index/ {_QUERY_FLAGS[_modality(config, query)]} --k 10")
    text = [t for t in towers if _modality(config, t) == "text" and t != items]
    if text:
        lines.append(f"omnifuse zero-shot {folder} --column {items} "
                     '--classes "t-shirt,trouser,bag" --template "a photo of a {}"')
    lines += ["```", "", "File paths in image/audio columns are resolved relative to the table's folder.",
              "The folder holds no pickle: config.yaml, preprocessors.json (+ assets/), model.safetensors."]
    return lines


def write_model_card(folder: Path, config: Config, task: Task, metrics: dict[str, Any]) -> Path:
    """Writes ``folder/README.md``."""
    path = folder / "README.md"
    path.write_text(render_model_card(config, task, metrics), encoding="utf-8")
    return path
