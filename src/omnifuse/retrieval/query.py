"""Turning a search query (text, an image or a sound, or a raw vector) into one embedding.

A query is embedded by the tower of the model whose column has the query's modality: a text query goes
through the model's text tower, an image through its image tower, and so on. The index column's own tower
is preferred when it has that modality (image -> image search), otherwise the first other tower that has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from omnifuse.errors import BadRowError, BadValueError, DataError, ModelDirError

QUERY_KINDS = ("text", "image", "audio", "vector")
FLAGS = {"text": "--text / text=", "image": "--image / image=", "audio": "--audio / audio=",
         "video": "video=", "tabular": "a row of numbers and categories"}


class Embedder(Protocol):
    """What a query needs from a model: ``omnifuse.Predictor`` has all of it."""

    config: Any

    @property
    def embedding_columns(self) -> dict[str, str]: ...  # {column: modality}

    def embed(self, rows: Any, base_dir: Path | None = None, *, column: str | None = None) -> np.ndarray: ...


def pick_query(text: str | None, image: Any, audio: Any, vector: Any) -> tuple[str, Any]:
    """The one query given, as (kind, value).

    Raises:
        DataError: none or several of them are given. BadValueError: the text is empty.
    """
    given = {name: value for name, value in zip(QUERY_KINDS, (text, image, audio, vector), strict=True)
             if value is not None}
    if len(given) != 1:
        got = ", ".join(given) or "none"
        raise DataError(f"pass exactly one query: text=, image=, audio= or vector= (got {got})")
    kind, value = next(iter(given.items()))
    if kind == "text" and (not isinstance(value, str) or not value.strip()):
        raise BadValueError(f"the text query {value!r} is empty", "type some words to search for")
    if kind in ("image", "audio") and not isinstance(value, (str, Path, bytes, bytearray)):
        raise BadValueError(
            f"the {kind} query must be a file path or the file's bytes, got {type(value).__name__}",
            f"pass the path of a {kind} file",
        )
    return kind, value


def towers(model: Embedder, index_column: str | None) -> dict[str, str]:
    """{tower column: modality} of the columns that can embed a query for an index of ``index_column``.

    A contrastive model's towers share one embedding space, so each of them can; the encoders of any other
    model do not, so only the index column's own encoder can (image -> image search).

    Raises:
        ModelDirError: no column of the model can embed queries for this index.
    """
    columns = dict(model.embedding_columns)
    if model.config.label.task != "contrastive":
        columns = {c: m for c, m in columns.items() if c == index_column}
    if not columns:
        raise ModelDirError(
            f"the index's model has no embedding tower for the index column {index_column!r}; build the "
            "index from a model folder written by `omnifuse pretrain` (or one with that column as input)"
        )
    return columns


def tower_for(kind: str, available: dict[str, str], index_column: str | None, column: str | None) -> str:
    """The tower column that embeds a ``kind`` query.

    Args:
        kind: the query's modality (text, image or audio).
        available: {tower column: modality} of the model.
        index_column: the column the index was built from (preferred when it has this modality).
        column: an explicit tower column, or None to choose by modality.

    Raises:
        DataError: the model has no tower for this modality, or ``column`` is not a tower of that modality.
    """
    listing = ", ".join(f"{c} ({m})" for c, m in available.items())
    if column is not None:
        if available.get(column) != kind:
            raise DataError(
                f"column {column!r} is not a {kind} tower of the index's model; its towers: {listing}"
            )
        return column
    matching = [c for c, m in available.items() if m == kind]
    if not matching:
        flags = " or ".join(FLAGS.get(m, m) for m in dict.fromkeys(available.values()))
        raise DataError(
            f"the index's model has no {kind} tower, so it cannot embed this {kind} query; its towers: "
            f"{listing}; search with {flags}"
        )
    return index_column if index_column in matching else matching[0]


def embed_query(model: Embedder, column: str, kind: str, value: Any) -> np.ndarray:
    """The (D,) embedding of one query value through ``column``'s tower.

    Raises:
        BadValueError: the file or bytes cannot be decoded (names the file).
    """
    if kind in ("image", "audio") and isinstance(value, (str, Path)):
        value = Path(value).expanduser().resolve()
    elif isinstance(value, bytearray):
        value = bytes(value)
    try:
        embedding = model.embed([{column: value}], column=column)
    except BadRowError as exc:
        shown = f" {str(value)!r}" if isinstance(value, Path) else ""
        fix = f"pass a readable {kind} file"
        raise BadValueError(f"the {kind} query{shown}: {exc.reason}", fix) from None
    return np.asarray(embedding, dtype=np.float32).reshape(-1)  # (D,)
