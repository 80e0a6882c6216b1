"""Where an index's vectors came from (model folder, column, modality), and loading that model for queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from omnifuse.errors import DataError, ModelDirError
from omnifuse.retrieval.query import Embedder


@dataclass(frozen=True)
class IndexSource:
    """Where the vectors came from: the model folder, its column (tower) and that column's modality."""

    model: str | None = None
    column: str | None = None
    modality: str | None = None


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")



def load_source_model(source: IndexSource) -> Embedder:
    """The model recorded for an index, loaded to embed queries.

    Raises:
        DataError: the index was built from raw vectors (no model). ModelDirError: the model folder is gone.
    """
    from omnifuse.inference.predictor import (
        load,  # predictor -> ... never imports retrieval; lazy: torch-heavy
    )

    if source.model is None:
        raise DataError(
            "this index was built from raw vectors, without a model, so it cannot embed a text, image or "
            "audio query; search it with vector=, or build it with `omnifuse index --model DIR`"
        )
    if not Path(source.model).is_dir():
        raise ModelDirError(
            f"the index's model folder {source.model!r} does not exist any more; put the model back there "
            "or rebuild the index from the model's new place"
        )
    model: Embedder = load(source.model)  # type: ignore[assignment]
    return model
