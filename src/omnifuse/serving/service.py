"""The model-side work of the server: warm-up, prepared rows -> answers, model description, search.

Everything here runs on worker threads (never on the event loop) and returns plain JSON-able values.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from omnifuse.data.collate import Example
from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.ood.rows import row_flags, row_note
from omnifuse.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from omnifuse.inference.predictor import Predictor

METRICS_FILE = "metrics.json"
log = logging.getLogger("omnifuse.serving")
RESULT_KEYS = ("rank", "score", "id")


def warmup(predictor: Predictor) -> bool:
    """One forward on blank inputs, so that the first real request does not pay for lazy setup.

    A model that cannot take a one-sample blank input (e.g. wav2vec2's convolutions, or a contrastive
    model with no prediction head) is logged and skipped: ``load`` already ran its own warm-up, and a
    failed warm-up must not keep the server from becoming ready.

    Returns:
        True when the warm-up forward ran, False when it failed (and was logged).
    """
    try:
        inputs = {name: pre.blank() for name, pre in predictor.preprocessors.items()}
        example = Example(index=0, inputs=inputs, presence={name: True for name in inputs})
        predictor.run_examples([example])
    except Exception as exc:  # noqa: BLE001 - any failure only means no warm-up
        log.warning("the warm-up forward failed (%s: %s); serving without it", type(exc).__name__, exc)
        return False
    return True


def prediction_rows(predictor: Predictor, examples: list[Example]) -> list[dict[str, Any]]:
    """One forward over prepared examples -> ``{"prediction", "probabilities"}`` per example, in order,
    with ``"ood"`` ({input: {"score", "flagged", "weight"}}) and ``"ood_note"`` when the model has fitted
    OOD scores.

    ``probabilities`` is left out for regression; a non-finite probability is null.
    """
    logits, ratios, present = predictor.run_scored(examples)  # (N, C)
    task = predictor.task
    answers: list[dict[str, Any]] = [{"prediction": plain(value)} for value in task.decode(logits)]
    if task.classes:
        names = [str(c) for c in task.classes]
        for answer, row in zip(answers, task.probabilities(logits).tolist(), strict=True):  # (N, C) lists
            answer["probabilities"] = {n: finite(p) for n, p in zip(names, row, strict=True)}
    if ratios:
        drop = bool(getattr(predictor.model.gate, "drop", False))
        for answer, flags in zip(answers, row_flags(ratios, present, drop), strict=True):
            answer["ood"], answer["ood_note"] = flags, row_note(flags)
    return answers


def explanation_rows(predictor: Predictor, examples: list[Example]) -> list[dict[str, Any]]:
    """Explains prepared examples (see ``omnifuse.inference.explain``) in the API's shape, in order."""
    from omnifuse.inference.explain import explain_examples

    frame = explain_examples(predictor, examples)
    return explanations_from_frame(frame, predictor.config.input_names())


def explanations_from_frame(frame: pd.DataFrame, inputs: list[str]) -> list[dict[str, Any]]:
    """Maps the ``explain`` DataFrame (prediction, probability, weight_*, delta_*) to the API's rows."""
    out = []
    for record in frame.to_dict(orient="records"):
        effects = {
            name: {"weight": finite(record.get(f"weight_{name}")), "delta": finite(record[f"delta_{name}"])}
            for name in inputs
        }
        answer = {"prediction": plain(record["prediction"]),
                  "probability": finite(record.get("probability")), "inputs": effects}
        if "ood_note" in record:  # a model with OOD scores (see Predictor.ood_flags)
            answer["ood"] = {name: _flag_of(record, name) for name in inputs
                             if finite(record.get(f"ood_score_{name}")) is not None}  # present, fitted inputs
            answer["ood_note"] = record["ood_note"]
        out.append(answer)
    return out


def model_info(predictor: Predictor, search: bool) -> dict[str, Any]:
    """The ``/v1/model`` description: task, classes, input columns (with categories), training metrics."""
    config = predictor.config
    categories = categories_of(predictor)
    columns = []
    for name, column in config.table_columns().items():
        info: dict[str, Any] = {"name": name, "type": column.type, "allow_missing": column.allow_missing}
        if column.type == "categorical":
            info["categories"] = categories.get(name, [])
        columns.append(info)
    folder = predictor.folder
    return {
        "name": folder.name if folder is not None else "model",
        "task": config.label.task,
        "label": config.label.column,
        "classes": [str(c) for c in predictor.classes],
        "columns": columns,
        "metrics": read_metrics(folder),
        "version": __version__,
        "explain": not is_contrastive(predictor),
        "search": search,
    }


def is_contrastive(predictor: Predictor) -> bool:
    """True for a contrastive (embedding) model: it embeds and searches, it does not predict or explain."""
    return str(getattr(predictor.task, "name", "")) == "contrastive"


def categories_of(predictor: Predictor) -> dict[str, list[str]]:
    """Categorical column -> the categories its fitted preprocessor knows (specials left out)."""
    out: dict[str, list[str]] = {}
    for pre in predictor.preprocessors.values():
        if isinstance(pre, TabularPreprocessor):
            for name in pre.categorical:
                out[name] = [str(v) for v in pre.vocab[name][2:]]  # [0], [1]: <missing>, <unk>
    return out


def read_metrics(folder: Path | None) -> dict[str, Any]:
    """The folder's metrics.json with non-finite numbers as null ({} when there is none)."""
    path = None if folder is None else folder / METRICS_FILE
    if path is None or not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    cleaned = json_safe(raw)
    return cleaned if isinstance(cleaned, dict) else {}


def search_results(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """An index's result frame (rank, score, id, metadata columns...) -> the API's result objects."""
    results = []
    for record in frame.to_dict(orient="records"):
        metadata = {str(k): json_safe(plain(v)) for k, v in record.items() if k not in RESULT_KEYS}
        results.append({"rank": int(record["rank"]), "score": finite(record["score"]) or 0.0,
                        "id": json_safe(plain(record["id"])), "metadata": metadata})
    return results


def plain(value: Any) -> Any:
    """A numpy/torch scalar as the Python value; non-finite floats as None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _flag_of(record: Mapping[Any, Any], name: str) -> dict[str, Any]:
    """One input's ``ood`` entry from an explanation row's ``ood_score_<name>`` / ``ood_weight_<name>``."""
    score = finite(record[f"ood_score_{name}"])
    return {"score": score, "flagged": score is not None and score > 1,
            "weight": finite(record.get(f"ood_weight_{name}"))}


def finite(value: Any) -> float | None:
    """A finite float, or None (missing, NaN or infinite)."""
    if value is None:
        return None
    number = float(plain(value)) if plain(value) is not None else math.nan
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Nested dicts/lists with non-finite floats replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
