"""Vector index: build time, single-query latency and recall@10 of the approximate indexes against exact
search, at 10^4, 10^5 and 10^6 random 256-d L2-normalised float32 vectors (``--quick``: 10^4 and 5 * 10^4).

Every index is an ``omnifuse.retrieval.VectorIndex`` with its default options (ivf: nlist = 4 * sqrt(N),
nprobe 32; hnsw: M 32, efConstruction 40, efSearch 64); the baseline is the exact ``flat`` index over the same
vectors, queried in the same run, one query per call, the two sides interleaved. Recall@10 is the share of
the exact top 10 that the approximate index returns.

Queries run with one FAISS (OpenMP) thread: FAISS spreads a batch over threads by query, so a single query
gains nothing from more, and on a busy machine OpenMP's waiting threads make single-query latency erratic.
Builds use FAISS's default thread count.

Uniform random vectors in 256 dimensions are the hardest case for an approximate index: every point is
almost equally far from every other, so there is no neighbourhood to exploit and recall is low. Real
embeddings are clustered; the ``clustered`` row (10^5 points around 1,000 centres) shows the same index on
such data. HNSW is not built at 10^6 (its build alone takes several minutes on 2 cores).
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from common import BenchResult, Sample, Settings, interleaved, latency_stats_ms

NAME = "index"
DIM = 256
BATCH_ROWS = 100_000  # vectors generated at a time (keeps the float64 temporaries small)
HNSW_MAX_ROWS = 100_000
FULL_PLAN = [(10_000, 200), (100_000, 200), (1_000_000, 40)]  # (rows, single queries timed per side)
QUICK_PLAN = [(10_000, 100), (50_000, 50)]


def random_unit(rows: int, seed: int, centres: np.ndarray | None = None) -> np.ndarray:
    """(rows, DIM) float32 L2-normalised vectors, made in batches (uniform on the sphere, or around
    ``centres``)."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, DIM), dtype=np.float32)
    for start in range(0, rows, BATCH_ROWS):
        block = rng.standard_normal((min(BATCH_ROWS, rows - start), DIM), dtype=np.float32)  # (b, DIM)
        if centres is not None:
            block = centres[rng.integers(0, len(centres), len(block))] + 0.5 * block / np.sqrt(DIM)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _timed_build(vectors: np.ndarray, kind: str) -> tuple[Any, float]:
    from omnifuse.retrieval import IndexOptions, VectorIndex

    started = time.perf_counter()
    index = VectorIndex.build(vectors, options=IndexOptions(kind=kind))
    return index, time.perf_counter() - started


def _one_at_a_time(index: Any, queries: np.ndarray) -> Callable[[], Any]:
    """A callable that searches the next query (cycling) for its top 10."""
    rows = itertools.cycle(range(len(queries)))
    return lambda: index.search_vectors(queries[next(rows)][None, :], 10)


def recall_at_10(approximate: Any, exact: Any, queries: np.ndarray) -> float:
    """Mean share of the exact top 10 found by the approximate index."""
    _, found = approximate.search_vectors(queries, 10)
    _, truth = exact.search_vectors(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


@contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP thread count set to ``count`` inside the block."""
    from omnifuse.retrieval.faiss_index import import_faiss

    faiss = import_faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _compare(label: str, kind: str, vectors: np.ndarray, queries: np.ndarray, exact: Any, flat_build: float,
             warmup: int) -> list[BenchResult]:
    """Two rows: query throughput (approximate vs exact) and build time (approximate vs exact)."""
    approximate, build = _timed_build(vectors, kind)
    sides = {kind: _one_at_a_time(approximate, queries), "flat": _one_at_a_time(exact, queries)}
    with faiss_threads(1):
        times = interleaved(sides, len(queries), warmup)
    fast, slow = _ms(times[kind]), _ms(times["flat"])
    recall = recall_at_10(approximate, exact, queries)
    qps, base_qps = 1000.0 / fast["p50_ms"], 1000.0 / slow["p50_ms"]
    params = approximate.params
    details = {"recall@10": recall, "approximate_ms": fast, "exact_ms": slow, "params": params,
               "build_s": build, "flat_build_s": flat_build, "rows": len(vectors), "queries": len(queries)}
    shown = ", ".join(f"{k} {v}" for k, v in params.items() if k != "train_size")
    return [
        BenchResult(f"{label}_{kind}_query", "queries/s", qps, base_qps, qps / base_qps, "", details,
                    f"recall@10 {recall:.3f}; speed-up vs exact; {shown}"),
        BenchResult(f"{label}_{kind}_build", "build s", build, flat_build, build / flat_build, "", {},
                    f"{len(vectors):,} rows; ratio = build time vs exact"),
    ]


def _size_rows(rows: int, queries: int, settings: Settings, centres: np.ndarray | None = None,
               label: str | None = None) -> list[BenchResult]:
    vectors = random_unit(rows, seed=rows, centres=centres)
    picked = random_unit(queries, seed=1, centres=centres)
    exact, flat_build = _timed_build(vectors, "flat")
    label = label or f"index_{_size(rows)}"
    kinds = ["ivf"] if centres is not None or rows > HNSW_MAX_ROWS else ["ivf", "hnsw"]
    out = []
    for kind in kinds:
        out += _compare(label, kind, vectors, picked, exact, flat_build, settings.warmup + 2)
        gc.collect()
    return out


def run(settings: Settings) -> list[BenchResult]:
    """Measures build time, query latency and recall at each size; returns the result rows."""
    plan = QUICK_PLAN if settings.quick else FULL_PLAN
    results: list[BenchResult] = []
    for rows, queries in plan:
        results += _size_rows(rows, queries, settings)
        gc.collect()
    rows, queries = plan[1]
    centres = random_unit(1_000, seed=7)
    results += _size_rows(rows, queries, settings, centres, label=f"index_clustered_{_size(rows)}")
    return results


def _size(rows: int) -> str:
    """10000 -> '1e4', 50000 -> '5e4'."""
    return f"{rows:.0e}".replace("e+0", "e").replace("e+", "e")


def _ms(samples: list[Sample]) -> dict[str, float]:
    return latency_stats_ms([s.wall for s in samples])
