"""``evaluate`` on a saved model folder: the baselines of the training run, reused and marked as such.

A model folder holds no training rows, so ``omnifuse evaluate`` cannot refit the baselines on them; it shows
those ``train`` fitted and scored (``metrics.json``), with a note saying on which table they were scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def same_table(first: str, second: str) -> bool:
    """Whether two table sources (paths as given) name the same file."""
    try:
        return first == second or Path(first).resolve() == Path(second).resolve()
    except (OSError, RuntimeError):
        return False


def training_baselines(folder: Path | None, source: str) -> dict[str, Any] | None:
    """The training run's baselines from ``folder/metrics.json``, marked ``reused``, or None when it has none.

    Args:
        folder: the model folder (None for a model that was never saved).
        source: the table being evaluated, to say whether the baselines were scored on it.
    """
    path = None if folder is None else folder / "metrics.json"
    if path is None or not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8")).get("baselines")
    if not isinstance(stored, dict) or not stored.get("results"):
        return None
    scored = f"the {stored['split']} rows of `{stored.get('source') or 'the training table'}`"
    if same_table(str(stored.get("source", "")), source):
        note = f"fitted when the model was trained and scored on {scored}, the table evaluated here"
    else:
        note = (f"fitted when the model was trained and scored on {scored}, not on this table: a model "
                "folder holds no training rows to refit them (`omnifuse baseline --test` scores them on any "
                "table)")
    return {**stored, "reused": True, "notes": [note, *stored.get("notes", [])]}
