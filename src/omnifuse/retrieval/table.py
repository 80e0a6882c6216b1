"""Embedding one column of a table with a model, and building (or growing) an index folder from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from omnifuse.data.io import Table, read_table
from omnifuse.errors import BadRowError, DataError
from omnifuse.retrieval.faiss_index import IndexOptions
from omnifuse.retrieval.index import IndexSource, VectorIndex, check_unique
from omnifuse.retrieval.query import Embedder
from omnifuse.retrieval.read import load_index
from omnifuse.retrieval.store import INFO_FILE

CHUNK_ROWS = 256  # rows embedded per progress step


def embed_table(model: Embedder, table: Table, column: str, progress: bool = True,
                console: Console | None = None) -> np.ndarray:
    """(N, D) embeddings of ``column`` of every row, in order, with a progress bar.

    Raises:
        DataError: the table lacks the column, or the model cannot embed it.
        BadRowError: a cell cannot be used (its row is the table's row number, from 0).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    frame = table.frame
    if column not in frame.columns:
        raise DataError(
            f"table {table.source!r} has no column {column!r} (columns: {_names(frame)}); "
            "pick one of the model's embedding columns with --column"
        )
    parts = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"embedding {column}", total=len(frame))
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[start : start + CHUNK_ROWS][[column]]
            try:
                parts.append(np.asarray(model.embed(chunk, base_dir=table.base_dir, column=column)))
            except BadRowError as exc:
                raise BadRowError(start + exc.row, exc.column, exc.reason, exc.fix) from None
            bar.advance(task, len(chunk))
    return np.concatenate(parts).astype(np.float32)  # (N, D)


def table_ids(frame: pd.DataFrame, id_column: str | None, source: str) -> tuple[list[Any] | None, str | None]:
    """The row ids (None: numbered by position) and the id column used (``id`` when there is one).

    Raises:
        DataError: the id column is missing, has empty cells or repeats a value.
    """
    if id_column is None:
        id_column = "id" if "id" in frame.columns else None
        if id_column is None:
            return None, None
    if id_column not in frame.columns:
        raise DataError(
            f"table {source!r} has no id column {id_column!r} (columns: {_names(frame)}); "
            "name an existing column with --id-column"
        )
    empty = frame[id_column].isna()
    if empty.any():
        raise DataError(
            f"id column {id_column!r} of {source!r} is empty in row {int(np.flatnonzero(empty)[0])}; "
            "give every row an id"
        )
    ids = frame[id_column].tolist()
    check_unique(ids, f"id column {id_column!r} of {source!r}")
    return ids, id_column


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns))


def load_embedder(model_dir: Path) -> Embedder:
    """The model folder loaded as a Predictor."""
    from omnifuse.inference.predictor import load

    model: Embedder = load(model_dir)  # type: ignore[assignment]
    return model


def index_table(model_dir: Path, data: Path, column: str, out: Path, options: IndexOptions,
                append: bool = False, overwrite: bool = False, id_column: str | None = None,
                progress: bool = True, console: Console | None = None) -> VectorIndex:
    """Embeds ``column`` of a table and writes (or, with ``append``, grows) the index folder ``out``.

    Metadata are the table's other columns (not the embedded column nor the id column).

    Raises:
        DataError: ``out`` holds an index and neither ``append`` nor ``overwrite`` is set; appending with
            another model or column; bad ids (see ``table_ids``). ModelDirError: a bad model folder.
    """
    exists = (out / INFO_FILE).exists()
    if exists and not (append or overwrite):
        raise DataError(
            f"index folder {str(out)!r} already holds an index; pass --append to add these rows to it, "
            "--overwrite to replace it, or choose another --out"
        )
    existing = load_index(out) if exists and append else None
    model = load_embedder(model_dir)
    source = IndexSource(str(model_dir.resolve()), column, model.embedding_columns.get(column))
    if existing is not None:
        _check_same_source(existing, source, out)
    table = read_table(data)
    ids, used = table_ids(table.frame, id_column, table.source)
    vectors = embed_table(model, table, column, progress, console)
    # The indexed column stays in the metadata: a hit shows the item itself (its image path, its text).
    metadata = table.frame.drop(columns=[used] if used is not None else [])
    if existing is None:
        index = VectorIndex.build(vectors, ids, metadata, options, source)
    else:
        index = existing
        index.add(vectors, ids, metadata)
    index.save(out)
    return index


def _check_same_source(index: VectorIndex, source: IndexSource, out: Path) -> None:
    if (index.source.model, index.source.column) != (source.model, source.column):
        raise DataError(
            f"index folder {str(out)!r} holds embeddings of column {index.source.column!r} by model "
            f"{index.source.model!r}, not of {source.column!r} by {source.model!r}; append with the same "
            "model and column, or write a new index with another --out"
        )


def embeddings_frame(ids: list[Any] | None, vectors: np.ndarray) -> pd.DataFrame:
    """``id`` (row numbers when None) and ``embedding`` (a list of float32 per row) columns."""
    count = vectors.shape[0]
    return pd.DataFrame({"id": list(range(count)) if ids is None else ids,
                         "embedding": list(vectors.astype(np.float32))})


def embed_to_parquet(model_dir: Path, data: Path, column: str, out: Path, id_column: str | None = None,
                     progress: bool = True, console: Console | None = None) -> pd.DataFrame:
    """Embeds ``column`` of a table and writes ``id`` + ``embedding`` columns to a Parquet file.

    Returns:
        The written frame.
    """
    model = load_embedder(model_dir)
    table = read_table(data)
    ids, _ = table_ids(table.frame, id_column, table.source)
    frame = embeddings_frame(ids, embed_table(model, table, column, progress, console))
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return frame
