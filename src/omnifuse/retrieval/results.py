"""Search results as JSON for the HTTP API: ``{"rank", "score", "id", "metadata": {...}}`` per hit."""

from __future__ import annotations

from typing import Any

import pandas as pd

from omnifuse.evaluation.metrics import clean
from omnifuse.retrieval.index import RESULT_COLUMNS


def results_json(hits: pd.DataFrame) -> list[dict[str, Any]]:
    """The hits of ``VectorIndex.search`` as plain JSON-able dicts (NaN and inf become None).

    Returns:
        One ``{"rank": int, "score": float, "id": ..., "metadata": {column: value}}`` per hit, best first.
    """
    meta_columns = [c for c in hits.columns if c not in RESULT_COLUMNS]
    out = []
    for record in hits.to_dict(orient="records"):
        out.append(clean({
            "rank": int(record["rank"]),
            "score": float(record["score"]),
            "id": record["id"],
            "metadata": {c: _plain(record[c]) for c in meta_columns},
        }))
    return out


def _plain(value: Any) -> Any:
    """Timestamps as ISO 8601 text; other values as they are (``clean`` unwraps numpy types)."""
    return value.isoformat() if isinstance(value, pd.Timestamp) else value
