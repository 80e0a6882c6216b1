"""VectorIndex: a FAISS index of L2-normalised vectors with row ids and metadata, searchable by text,
image, audio or raw vector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omnifuse.errors import DataError
from omnifuse.retrieval import faiss_index as fx
from omnifuse.retrieval.query import Embedder, embed_query, pick_query, tower_for, towers
from omnifuse.retrieval.source import IndexSource, load_source_model, now
from omnifuse.retrieval.store import save_index

RESULT_COLUMNS = ("rank", "score", "id")


class VectorIndex:
    """Vectors (cosine similarity) with a row id and metadata per vector.

    Build one with ``VectorIndex.build`` (or ``omnifuse index``), read one with ``omnifuse.load_index``.

    Args:
        index: the FAISS index (row ``i`` of ``rows`` is FAISS id ``i``).
        kind: flat, ivf or hnsw.
        params: the kind's parameters (nlist, nprobe, M, ...).
        rows: an ``id`` column, then metadata columns; one row per vector.
        options: the options it was built with (``auto`` may switch kinds as rows are added).
        source: the model folder, column and modality the vectors came from (all None for raw vectors).
        created: when it was first built (ISO 8601).
    """

    def __init__(self, index: Any, kind: str, params: dict[str, Any], rows: pd.DataFrame,
                 options: fx.IndexOptions, source: IndexSource, created: str | None = None) -> None:
        assert index.ntotal == len(rows), "one row per vector"
        self.index, self.kind, self.params, self.rows = index, kind, params, rows
        self.options, self.source = options, source
        self.created = created or now()
        self.model: Embedder | None = None  # the query model, loaded from source.model on first use

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[Any] | None = None,
              metadata: pd.DataFrame | None = None, options: fx.IndexOptions | None = None,
              source: IndexSource | None = None) -> VectorIndex:
        """A new index of (N, D) ``vectors`` (L2-normalised here).

        Args:
            vectors: (N, D) vectors.
            ids: N unique row ids (default 0..N-1).
            metadata: N rows of extra columns returned with every hit (none named id, rank or score).
            options: kind and its parameters (default: auto).
            source: model folder, column and modality, so that ``search(text=...)`` can embed queries.

        Raises:
            DataError: bad shapes, duplicate ids, clashing metadata column names. ConfigError: bad options.
        """
        options = options or fx.IndexOptions()
        options.validate()
        data = fx.normalized(vectors)
        rows = make_rows(data.shape[0], ids, metadata, start=0)
        kind = fx.resolve_kind(options, data.shape[0])
        index, params = fx.new_index(kind, data, options)
        index.add(data)
        return cls(index, kind, params, rows, options, source or IndexSource())

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return int(self.index.d)

    @property
    def count(self) -> int:
        """The number of vectors."""
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray, ids: Sequence[Any] | None = None,
            metadata: pd.DataFrame | None = None) -> None:
        """Adds (N, D) vectors with their ids (default: continuing from ``count``) and metadata.

        An ``auto`` index that was exact and grows past ``exact_below`` is rebuilt as the approximate kind.

        Raises:
            DataError: wrong dimension, an id already in the index (or repeated), id types that differ.
        """
        data = fx.normalized(vectors, self.dim)
        new_rows = make_rows(data.shape[0], ids, metadata, start=self.count)
        rows = concat_rows(self.rows, new_rows)
        kind = fx.resolve_kind(self.options, self.count + data.shape[0])
        if kind != self.kind and self.kind == "flat":
            data = np.concatenate([fx.all_vectors(self.index), data])  # (N_old + N, D)
            self.index, self.params = fx.new_index(kind, data, self.options)
            self.kind = kind
        self.index.add(data)
        self.rows = rows

    def search_vectors(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of each (Q, D) query: scores (Q, k') and row positions (Q, k').

        ``k' = min(k, count)``; an approximate index may find fewer than ``k'`` (position -1, score -inf).
        """
        check_k(k)
        data = fx.normalized(queries, self.dim)
        scores, positions = self.index.search(data, min(k, max(self.count, 1)))
        return scores, positions

    def search(self, text: str | None = None, image: str | Path | bytes | None = None,
               audio: str | Path | bytes | None = None, vector: np.ndarray | Sequence[float] | None = None,
               k: int = 10, column: str | None = None) -> pd.DataFrame:
        """The ``k`` rows most similar to one query, best first.

        Args:
            text: a text query, embedded by the model's text tower.
            image: an image file path (or its bytes), embedded by the model's image tower.
            audio: an audio file path (or its bytes), embedded by the model's audio tower.
            vector: a (D,) vector, used as it is.
            k: how many rows (at least 1).
            column: the tower to embed the query with (default: the first of the query's modality,
                the index's own column first).

        Returns:
            A DataFrame: ``rank`` (1 = best), ``score`` (cosine similarity), ``id``, then the metadata.

        Raises:
            DataError: not exactly one query, k < 1, no tower for the query's modality, a dimension
                mismatch, or an index built from raw vectors searched by text/image/audio.
            BadValueError: empty text, or a file that cannot be decoded (named).
        """
        check_k(k)
        kind, value = pick_query(text, image, audio, vector)
        if kind == "vector":
            query = np.asarray(value, dtype=np.float32).reshape(1, -1)  # (1, D)
        else:
            query = self.embed_query(kind, value, column)[None, :]  # (1, D)
        scores, positions = self.search_vectors(query, k)
        return self.results(scores[0], positions[0])

    def embed_query(self, kind: str, value: Any, column: str | None = None) -> np.ndarray:
        """The (D,) embedding of a text, image or audio query with the index's model."""
        model = self.query_model()
        tower = tower_for(kind, towers(model, self.source.column), self.source.column, column)
        embedding = embed_query(model, tower, kind, value)
        if embedding.shape[0] != self.dim:
            raise DataError(
                f"the model's {tower!r} tower gives {embedding.shape[0]}-dimensional embeddings but the "
                f"index holds {self.dim}-dimensional ones; rebuild the index with this model"
            )
        return embedding

    def query_model(self) -> Embedder:
        """The model that embeds queries, loaded from the recorded folder on first use."""
        if self.model is None:
            self.model = load_source_model(self.source)
        return self.model

    def results(self, scores: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
        """The hits of one query as a DataFrame (rank, score, id, metadata...)."""
        found = positions >= 0
        hits = self.rows.iloc[positions[found]].reset_index(drop=True)
        hits.insert(0, "score", scores[found].astype(float))
        hits.insert(0, "rank", np.arange(1, int(found.sum()) + 1))
        return hits

    def save(self, folder: str | Path) -> Path:
        """Writes ``index.faiss``, ``index.json`` and ``rows.parquet`` into ``folder`` (replacing them)."""
        return save_index(self, Path(folder))


def check_k(k: int) -> None:
    """Raises DataError unless ``k`` is a whole number of at least 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a whole number of at least 1, got {k!r}; ask for e.g. k=10 results")


def make_rows(count: int, ids: Sequence[Any] | None, metadata: pd.DataFrame | None,
              start: int) -> pd.DataFrame:
    """The rows table (``id`` + metadata) of ``count`` new vectors.

    Raises:
        DataError: the ids or metadata are not one per vector, ids repeat, or a metadata column is
            named id, rank or score.
    """
    values = list(range(start, start + count)) if ids is None else list(ids)
    if len(values) != count:
        raise DataError(f"got {len(values)} ids for {count} vectors; pass one id per vector")
    check_unique(values, "the new rows")
    meta = pd.DataFrame(index=range(count)) if metadata is None else metadata.reset_index(drop=True)
    if len(meta) != count:
        raise DataError(f"got {len(meta)} metadata rows for {count} vectors; pass one row per vector")
    clashes = [str(c) for c in meta.columns if str(c) in RESULT_COLUMNS]
    if clashes:
        raise DataError(
            f"metadata column(s) {', '.join(map(repr, clashes))} clash with the search result columns "
            f"{', '.join(RESULT_COLUMNS)}; rename or drop them (or use the column as the ids)"
        )
    rows = meta.copy()
    rows.columns = [str(c) for c in rows.columns]
    rows.insert(0, "id", pd.Series(values, dtype=object if _mixed(values) else None))
    return rows


def _mixed(values: list[Any]) -> bool:
    return len({type(v) for v in values}) > 1


def check_unique(ids: list[Any], where: str) -> None:
    """Raises DataError naming the first ids that occur more than once."""
    series = pd.Series(ids, dtype=object)
    repeated = series[series.duplicated()].unique().tolist()
    if repeated:
        shown = ", ".join(repr(v) for v in repeated[:5])
        raise DataError(
            f"ids must be unique: {shown} occur more than once in {where}; give every row its own id "
            "(an id column with unique values, e.g. --id-column)"
        )


def concat_rows(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The rows of an index after adding ``new``: ids of both sides must be unique and of one kind.

    Raises:
        DataError: an id of ``new`` is already in ``old``, or the ids are numbers on one side and text
            on the other.
    """
    if len(old) and len(new) and _id_kind(old["id"]) != _id_kind(new["id"]):
        raise DataError(
            f"the index's ids are {_id_kind(old['id'])} but the new ids are {_id_kind(new['id'])}; "
            "use ids of the same kind (all numbers or all text)"
        )
    taken = set(old["id"].tolist())
    clash = [v for v in new["id"].tolist() if v in taken]
    if clash:
        shown = ", ".join(repr(v) for v in clash[:5])
        raise DataError(
            f"id(s) {shown} are already in the index ({len(clash)} in all); ids must stay unique: "
            "give the new rows other ids (e.g. --id-column with unique values)"
        )
    return pd.concat([old, new], ignore_index=True)


def _id_kind(ids: pd.Series) -> str:
    return "numbers" if pd.api.types.is_numeric_dtype(ids) else "text"
