"""The FAISS side of a vector index: which kind to build, how to build and tune it.

All kinds use inner product on L2-normalised vectors, i.e. cosine similarity:

- ``flat``: exact search (``IndexFlatIP``), every vector scored; best below some tens of thousands of rows.
- ``ivf``: ``IndexIVFFlat``, vectors bucketed around ``nlist`` k-means centroids (about 4 * sqrt(N)), trained
  on a sample; a query scans the ``nprobe`` nearest buckets. Fast to build, approximate.
- ``hnsw``: ``IndexHNSWFlat``, a navigable small-world graph (M links per vector); slower to build, strong
  recall at a given speed. https://arxiv.org/abs/1603.09320
- ``auto``: ``flat`` below ``exact_below`` rows, ``approximate`` (ivf or hnsw) from there on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from omnifuse.errors import ConfigError, DataError, MissingExtraError

KINDS = ("auto", "flat", "ivf", "hnsw")
APPROXIMATE = ("ivf", "hnsw")
MIN_POINTS_PER_CENTROID = 39  # FAISS's k-means warns below this many training points per centroid
TRAIN_POINTS_PER_CENTROID = 40


def import_faiss() -> Any:
    """The ``faiss`` module, or an error naming the extra to install."""
    try:
        import faiss
    except ImportError:
        raise MissingExtraError(
            "vector indexes need FAISS, which is not installed; pip install 'omnifuse[retrieval]'"
        ) from None
    return faiss


@dataclass(frozen=True)
class IndexOptions:
    """How an index is built and searched.

    Attributes:
        kind: auto, flat, ivf or hnsw (see the module docstring).
        exact_below: ``auto`` builds ``flat`` below this many rows, ``approximate`` from there on.
        approximate: the kind ``auto`` picks for large indexes: ivf or hnsw.
        nprobe: ivf: buckets scanned per query (more: better recall, slower).
        hnsw_m: hnsw: links per vector.
        ef_construction: hnsw: candidate list size while building.
        ef_search: hnsw: candidate list size while searching (more: better recall, slower).
        seed: ivf: seed of the training sample and of k-means.
    """

    kind: str = "auto"
    exact_below: int = 50_000
    approximate: str = "ivf"
    nprobe: int = 32
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 64
    seed: int = 0

    def validate(self) -> None:
        """Raises ConfigError listing every bad option."""
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.approximate not in APPROXIMATE:
            problems.append(f"approximate {self.approximate!r} is not one of {', '.join(APPROXIMATE)}")
        for name in ("exact_below", "nprobe", "hnsw_m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if problems:
            raise ConfigError(problems)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain values (recorded in ``index.json``)."""
        return asdict(self)


def resolve_kind(options: IndexOptions, count: int) -> str:
    """The concrete kind (flat, ivf or hnsw) for an index of ``count`` rows."""
    if options.kind != "auto":
        return options.kind
    return "flat" if count < options.exact_below else options.approximate


def ivf_nlist(count: int) -> int:
    """Buckets for ``count`` training rows: about 4 * sqrt(N), at most N / 39 so k-means has enough points."""
    return max(1, min(round(4 * math.sqrt(count)), count // MIN_POINTS_PER_CENTROID))


def normalized(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """A float32, C-contiguous, row-L2-normalised copy of (N, D) ``vectors`` (zero rows stay zero).

    Raises:
        DataError: not a finite (N, D) matrix, or D differs from ``dim``.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise DataError(f"vectors must be a (rows, dim) matrix, got shape {array.shape}; stack them into one")
    if dim is not None and array.shape[1] != dim:
        raise DataError(
            f"vectors have {array.shape[1]} dimensions but the index holds {dim}-dimensional ones; "
            "use vectors from the same model and column the index was built with"
        )
    if not np.isfinite(array).all():
        raise DataError("vectors contain NaN or infinite values; fix them before indexing or searching")
    norms = np.linalg.norm(array, axis=1, keepdims=True)  # (N, 1)
    return np.ascontiguousarray(array / np.where(norms == 0, 1.0, norms), dtype=np.float32)


def new_index(kind: str, vectors: np.ndarray, options: IndexOptions) -> tuple[Any, dict[str, Any]]:
    """An empty FAISS index of ``kind`` for ``vectors`` (ivf: trained on a sample) and its parameters.

    Args:
        kind: flat, ivf or hnsw.
        vectors: (N, D) normalised float32 vectors (ivf trains on them; nothing is added).
        options: the build and search options.

    Returns:
        The index and the parameters to record in ``index.json``.
    """
    faiss = import_faiss()
    dim = vectors.shape[1]
    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options.ef_construction
        params = {"M": options.hnsw_m, "ef_construction": options.ef_construction,
                  "ef_search": options.ef_search}
        set_search_params(index, kind, params)
        return index, params
    return _trained_ivf(vectors, options)


def _trained_ivf(vectors: np.ndarray, options: IndexOptions) -> tuple[Any, dict[str, Any]]:
    faiss = import_faiss()
    count, dim = vectors.shape
    if count == 0:
        raise DataError("an ivf index is trained on the vectors it starts with; pass at least one vector")
    nlist = ivf_nlist(count)
    size = min(count, nlist * TRAIN_POINTS_PER_CENTROID)
    rng = np.random.default_rng(options.seed)
    sample = vectors if size == count else vectors[np.sort(rng.choice(count, size, replace=False))]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = options.seed
    index.train(np.ascontiguousarray(sample))
    params = {"nlist": nlist, "nprobe": min(options.nprobe, nlist), "train_size": size}
    set_search_params(index, "ivf", params)
    return index, params


def set_search_params(index: Any, kind: str, params: dict[str, Any]) -> None:
    """Applies the recorded search-time parameters (ivf nprobe, hnsw efSearch) to a built or read index."""
    if kind == "ivf":
        index.nprobe = int(params["nprobe"])
    elif kind == "hnsw":
        index.hnsw.efSearch = int(params["ef_search"])


def all_vectors(index: Any) -> np.ndarray:
    """(N, D) copies of the vectors stored in a flat index (used to rebuild it as another kind)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
