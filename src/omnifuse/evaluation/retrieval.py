"""Retrieval metrics from similarity matrices: Recall@k, MRR, median rank, class-level precision@k and mAP.

Everything is plain numpy on a similarity matrix ``sim`` (N queries, M items; higher is more similar).

Ties are counted against the query (the pessimistic convention): an item that scores *the same* as the
correct item is ranked before it, and among tied items the wrong ones come first. A model whose
embeddings are all equal thus gets the worst possible scores, never a perfect Recall@1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omnifuse.errors import DataError

RECALL_KS = (1, 5, 10)
PRECISION_K = 10


def rank_of_matches(sim: np.ndarray, match: np.ndarray) -> np.ndarray:
    """The 1-based rank of the best-placed matching item of every query (ties counted against it).

    Args:
        sim: (N, M) similarities.
        match: (N, M) bool, True where item j is a correct answer to query i.

    Returns:
        (N,) int ranks: 1 + the number of non-matching items scoring at least as high as the best match.

    Raises:
        DataError: the shapes differ, or a query has no matching item.
    """
    sim, match = np.asarray(sim, dtype=np.float64), np.asarray(match, dtype=bool)
    if sim.ndim != 2 or sim.shape != match.shape:
        raise DataError(
            f"similarities {sim.shape} and matches {match.shape} must be two matrices of the same shape "
            "(queries x items); pass one match flag per similarity"
        )
    has_match = match.any(axis=1)
    if not has_match.all():
        row = int(np.flatnonzero(~has_match)[0])
        raise DataError(f"query {row} has no matching item; every query needs at least one correct answer")
    best = np.where(match, sim, -np.inf).max(axis=1)  # (N,)
    beaten = (~match) & (sim >= best[:, None])  # (N, M)
    return 1 + beaten.sum(axis=1)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """The share of queries whose first match is in the top ``k``."""
    return float(np.mean(np.asarray(ranks) <= k))


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank of the first match."""
    return float(np.mean(1.0 / np.asarray(ranks, dtype=np.float64)))


def median_rank(ranks: np.ndarray) -> float:
    """Median rank of the first match (1 is perfect)."""
    return float(np.median(np.asarray(ranks, dtype=np.float64)))


def _relevance_in_rank_order(sim: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """(N, M) bool relevance of the items sorted by falling score, irrelevant items first among ties."""
    order = np.lexsort((relevant, -sim), axis=1)  # primary key: -sim; then False (irrelevant) first
    return np.take_along_axis(relevant, order, axis=1)


def _class_relevance(sim: np.ndarray, query_labels: Sequence[object],
                     item_labels: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    sim = np.asarray(sim, dtype=np.float64)
    queries, items = np.asarray(query_labels, dtype=object), np.asarray(item_labels, dtype=object)
    if sim.ndim != 2 or sim.shape != (len(queries), len(items)):
        raise DataError(
            f"similarities {sim.shape} need one label per query and per item, got {len(queries)} query "
            f"label(s) and {len(items)} item label(s); pass labels for every row"
        )
    known_q = np.array([q is not None for q in queries], dtype=bool)  # (N,) None: an unlabelled row
    known_i = np.array([i is not None for i in items], dtype=bool)  # (M,)
    same = (queries[:, None] == items[None, :]) & known_q[:, None] & known_i[None, :]  # (N, M) bool
    return sim, same


def precision_at_k(sim: np.ndarray, query_labels: Sequence[object], item_labels: Sequence[object],
                   k: int = PRECISION_K) -> float:
    """Class-level precision@k: the mean share of each query's top ``k`` items that have its label.

    With fewer than ``k`` items the top is all of them, and the share is over that many. A label of
    None marks an unlabelled row: such a query is left out, and such an item is relevant to no query.

    Args:
        sim: (N, M) similarities.
        query_labels: N labels, one per query.
        item_labels: M labels, one per item.
        k: the cut-off (>= 1).
    """
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}; pass e.g. k=10")
    sim, relevant = _class_relevance(sim, query_labels, item_labels)
    top = _relevance_in_rank_order(sim, relevant)[:, :k]  # (N, min(k, M))
    labelled = np.array([q is not None for q in query_labels], dtype=bool)  # (N,)
    if not labelled.any():
        raise DataError("no query has a label; precision@k needs labelled rows")
    return float(top[labelled].mean())


def mean_average_precision(sim: np.ndarray, query_labels: Sequence[object],
                           item_labels: Sequence[object]) -> float:
    """Class-level mAP: per query, the mean of precision@r over the ranks r of items with its label.

    Queries whose label no item has, and unlabelled (None) queries, are left out.

    Raises:
        DataError: no query has a label that some item has.
    """
    sim, relevant = _class_relevance(sim, query_labels, item_labels)
    ordered = _relevance_in_rank_order(sim, relevant)  # (N, M)
    hits = np.cumsum(ordered, axis=1)  # (N, M) relevant items seen up to each rank
    precision = hits / np.arange(1, ordered.shape[1] + 1)  # (N, M) precision@r
    total = ordered.sum(axis=1)  # (N,)
    scored = total > 0
    if not scored.any():
        raise DataError("no query shares a label with any item; mAP needs matching labels on both sides")
    ap = (precision * ordered).sum(axis=1)[scored] / total[scored]
    return float(ap.mean())


def _normalise(emb: np.ndarray, name: str) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise DataError(f"embeddings {name!r} must be a non-empty (rows, dim) matrix, got shape {emb.shape}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)  # (N, 1)
    return emb / np.where(norms == 0, 1.0, norms)


def same_content(query_ids: np.ndarray | None, item_ids: np.ndarray | None, n: int) -> np.ndarray:
    """(N, N) bool: item j answers query i when j == i, or when pair j is indistinguishable from pair i
    (the same content on the item side, or on the query side). Ids None: only j == i."""
    match = np.eye(n, dtype=bool)
    for ids in (query_ids, item_ids):
        if ids is not None:
            values = np.asarray(ids)
            match |= values[:, None] == values[None, :]
    return match


def _direction(sim: np.ndarray, labels: Sequence[object] | None,
               match: np.ndarray | None = None) -> dict[str, float]:
    """Metrics of one direction; query i's correct items are ``match[i]`` (default: item i alone)."""
    ranks = rank_of_matches(sim, np.eye(*sim.shape, dtype=bool) if match is None else match)
    out = {f"recall@{k}": recall_at_k(ranks, k) for k in RECALL_KS}
    out |= {"mrr": mrr(ranks), "median_rank": median_rank(ranks)}
    if labels is not None:
        out[f"precision@{PRECISION_K}"] = precision_at_k(sim, labels, labels, PRECISION_K)
        out["map"] = mean_average_precision(sim, labels, labels)
    return out


def bidirectional_metrics(emb_a: np.ndarray, emb_b: np.ndarray, labels: Sequence[object] | None = None,
                          names: tuple[str, str] = ("a", "b"), content_a: np.ndarray | None = None,
                          content_b: np.ndarray | None = None) -> dict[str, float]:
    """Cross-modal retrieval metrics in both directions (row i of ``emb_a`` belongs with row i of ``emb_b``).

    Similarity is the cosine (rows are L2-normalised here). Top-level keys average the two directions:
    ``recall@1``, ``recall@5``, ``recall@10``, ``mrr``, ``median_rank`` and, with ``labels``,
    ``precision@10`` and ``map`` (class level: an item is relevant when it has the query's label).
    Per-direction figures are under ``"{a}->{b}/recall@1"`` and so on.

    Args:
        emb_a: (N, D) embeddings of the first column.
        emb_b: (N, D) embeddings of the second column.
        labels: N labels shared by row i of both sides, or None.
        names: the two columns' names, for the per-direction keys.
        content_a / content_b: (N,) content ids of each side's cells, or None. Rows with identical
            content on either side cannot be told apart, so each counts as a correct answer for the
            other (templated tables repeat texts; without ids such a tie counts against the model).

    Raises:
        DataError: the matrices are empty or differ in rows, or the labels are not one per row.
    """
    a, b = _normalise(emb_a, names[0]), _normalise(emb_b, names[1])
    if a.shape[0] != b.shape[0]:
        raise DataError(
            f"embeddings {names[0]!r} have {a.shape[0]} rows and {names[1]!r} {b.shape[0]}; "
            "row i of both must be the same example"
        )
    if labels is not None and len(labels) != a.shape[0]:
        raise DataError(f"got {len(labels)} labels for {a.shape[0]} rows; pass one label per row")
    sim = a @ b.T  # (N, N)
    match = same_content(content_a, content_b, a.shape[0])  # symmetric: the same for both directions
    forward, backward = _direction(sim, labels, match), _direction(sim.T, labels, match)
    out = {key: (forward[key] + backward[key]) / 2 for key in forward}
    for (src, dst), figures in (((names[0], names[1]), forward), ((names[1], names[0]), backward)):
        out |= {f"{src}->{dst}/{key}": value for key, value in figures.items()}
    return out
