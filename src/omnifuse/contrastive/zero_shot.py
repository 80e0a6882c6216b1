"""Zero-shot classification with a contrastive model: the nearest class prompt in the shared space (CLIP)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omnifuse.data.io import is_missing
from omnifuse.errors import DataError
from omnifuse.inference.predictor import Predictor, load
from omnifuse.inference.rows import Rows


def zero_shot(
    model: str | Path | Predictor,
    rows: Rows | str | Path,
    column: str,
    classes: Sequence[str],
    template: str = "{}",
    *,
    text_column: str | None = None,
    base_dir: Path | None = None,
) -> pd.DataFrame:
    """Classifies each row's ``column`` by the cosine to each class prompt embedded with the text tower.

    Args:
        model: a contrastive model folder or its Predictor.
        rows: a DataFrame, row dicts, one dict or a table path (only ``column`` is read).
        column: the tower whose values are classified (e.g. an image column).
        classes: the class names; each becomes the prompt ``template`` with ``{}`` replaced by the name.
        template: e.g. "a photo of a {}".
        text_column: the text tower that embeds the prompts; default: the model's (first) other text tower.
        base_dir: folder relative file paths are resolved against.

    Returns:
        One row per input row: ``prediction`` (a class name) and ``score_<class>`` (cosine) per class.

    Raises:
        DataError: not a contrastive model, no text tower, ``column`` not a tower, no classes, or a
            template without ``{}``.
    """
    predictor = model if isinstance(model, Predictor) else load(model)
    names = _check_classes(classes, template)
    text = _text_tower(predictor, column, text_column)
    prompts = [{text: template.replace("{}", name)} for name in names]
    class_emb = predictor.embed(prompts, column=text)  # (C, D)
    row_emb = predictor.embed(rows, base_dir, column=column)  # (N, D) or (D,)
    scores = np.atleast_2d(row_emb) @ class_emb.T  # (N, C)
    frame = pd.DataFrame({"prediction": [names[i] for i in scores.argmax(axis=1)]})
    for i, name in enumerate(names):
        frame[f"score_{name}"] = scores[:, i]
    return frame


def accuracy(predictions: pd.Series, labels: Sequence[Any]) -> float | None:
    """Share of rows whose prediction equals the label (case and surrounding spaces ignored); rows with a
    missing label are left out; None when no row has a label."""
    pairs = [(str(p).strip().lower(), str(y).strip().lower())
             for p, y in zip(predictions, labels, strict=True) if not is_missing(y)]
    return None if not pairs else float(np.mean([p == y for p, y in pairs]))


def _check_classes(classes: Sequence[str], template: str) -> list[str]:
    names = list(dict.fromkeys(str(c).strip() for c in classes if str(c).strip()))
    if not names:
        raise DataError("the class list is empty; pass class names, e.g. --classes 't-shirt,trouser,bag'")
    if "{}" not in template:
        raise DataError(
            f"template {template!r} has no '{{}}' where the class name goes; e.g. 'a photo of a {{}}'"
        )
    return names


def _text_tower(predictor: Predictor, column: str, text_column: str | None) -> str:
    if predictor.task.name != "contrastive":
        raise DataError(f"zero-shot needs a contrastive model (`omnifuse pretrain`); this one is "
                        f"{predictor.task.name}: use predict")
    towers = predictor.embedding_columns
    listed = ", ".join(f"{n} ({m})" for n, m in towers.items())
    if column not in towers:
        raise DataError(f"column {column!r} is not a tower of this model; use one of {listed}")
    texts = [n for n, m in towers.items() if m == "text" and n != column]
    if text_column is not None:
        if text_column not in texts:
            raise DataError(f"text_column {text_column!r} is not another text tower of this model "
                            f"(towers: {listed})")
        return text_column
    if not texts:
        raise DataError(f"the model has no text tower besides {column!r} (towers: {listed}); zero-shot "
                        "embeds the class names with a text tower: pretrain with a text column")
    return texts[0]
