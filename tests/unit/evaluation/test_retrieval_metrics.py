"""Retrieval metrics against values worked out by hand on tiny matrices (ties count against the query)."""

from __future__ import annotations

import numpy as np
import pytest

from omnifuse.errors import DataError
from omnifuse.evaluation.retrieval import (
    bidirectional_metrics,
    mean_average_precision,
    median_rank,
    mrr,
    precision_at_k,
    rank_of_matches,
    recall_at_k,
)

SIM = np.array([[0.9, 0.1, 0.5], [0.8, 0.3, 0.2], [0.4, 0.4, 0.4]])


def test_rank_of_matches_counts_ties_against_the_query() -> None:
    ranks = rank_of_matches(SIM, np.eye(3, dtype=bool))
    # q0: best; q1: 0.8 beats 0.3; q2: all tied, both wrong items go first
    assert ranks.tolist() == [1, 2, 3]


def test_rank_of_matches_uses_the_best_placed_of_several_matches() -> None:
    sim = np.array([[0.2, 0.7, 0.5, 0.9]])
    match = np.array([[True, False, True, False]])
    assert rank_of_matches(sim, match).tolist() == [3]  # 0.9 and 0.7 come before the best match 0.5


def test_recall_mrr_median() -> None:
    ranks = np.array([1, 2, 3])
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranks, 2) == pytest.approx(2 / 3)
    assert recall_at_k(ranks, 10) == 1.0
    assert mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert median_rank(ranks) == 2.0
    assert median_rank(np.array([1, 4])) == 2.5


def test_rank_of_matches_errors() -> None:
    with pytest.raises(DataError, match=r"query 1 has no matching item"):
        rank_of_matches(np.zeros((2, 2)), np.array([[True, False], [False, False]]))
    with pytest.raises(DataError, match=r"must be two matrices of the same shape"):
        rank_of_matches(np.zeros((2, 2)), np.ones((2, 3), dtype=bool))


def test_precision_at_k_hand_values() -> None:
    sim = np.array([[0.9, 0.8, 0.1, 0.7]])
    labels = ["x", "y", "x", "x"]
    assert precision_at_k(sim, ["x"], labels, k=1) == 1.0
    assert precision_at_k(sim, ["x"], labels, k=2) == 0.5
    assert precision_at_k(sim, ["x"], labels, k=3) == pytest.approx(2 / 3)
    assert precision_at_k(sim, ["x"], labels, k=10) == pytest.approx(3 / 4)  # fewer items than k


def test_precision_at_k_ties_put_wrong_items_first() -> None:
    sim = np.array([[0.5, 0.5, 0.5]])
    assert precision_at_k(sim, ["x"], ["x", "y", "y"], k=1) == 0.0
    assert precision_at_k(sim, ["x"], ["x", "y", "y"], k=3) == pytest.approx(1 / 3)


def test_precision_at_k_errors() -> None:
    with pytest.raises(DataError, match=r"k must be at least 1, got 0"):
        precision_at_k(np.zeros((1, 2)), ["x"], ["x", "y"], k=0)
    with pytest.raises(DataError, match=r"need one label per query and per item, got 2 query label"):
        precision_at_k(np.zeros((1, 2)), ["x", "y"], ["x", "y"])


def test_mean_average_precision_hand_values() -> None:
    sim = np.array([[0.9, 0.8, 0.1, 0.7], [0.9, 0.8, 0.1, 0.7]])
    items = ["x", "y", "x", "x"]
    # query x: relevant at ranks 1, 3, 4 -> (1 + 2/3 + 3/4) / 3; query y: at rank 2 -> 1/2
    expected = ((1 + 2 / 3 + 3 / 4) / 3 + 1 / 2) / 2
    assert mean_average_precision(sim, ["x", "y"], items) == pytest.approx(expected)


def test_mean_average_precision_skips_queries_without_relevant_items() -> None:
    sim = np.array([[0.9, 0.1], [0.3, 0.4]])
    assert mean_average_precision(sim, ["x", "z"], ["y", "x"]) == pytest.approx(1 / 2)
    with pytest.raises(DataError, match=r"no query shares a label with any item"):
        mean_average_precision(sim, ["z", "z"], ["x", "y"])


A = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
B = np.array([[2.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # row 0 is not unit length: it is normalised


def test_bidirectional_metrics_hand_values() -> None:
    m = bidirectional_metrics(A, B, labels=["x", "y", "x"], names=("photo", "note"))
    # photo->note ranks [1, 2, 3]; note->photo ranks [1, 2, 2]
    assert m["photo->note/recall@1"] == pytest.approx(1 / 3)
    assert m["note->photo/mrr"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert m["photo->note/mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == m["recall@10"] == 1.0
    assert m["mrr"] == pytest.approx(((1 + 1 / 2 + 1 / 3) / 3 + (1 + 1 / 2 + 1 / 2) / 3) / 2)
    assert m["median_rank"] == 2.0
    assert m["precision@10"] == pytest.approx(5 / 9)  # all 3 items are in the top 10
    forward = ((1 + 2 / 3) / 2 + 1 / 2 + (1 / 2 + 2 / 3) / 2) / 3
    backward = (1 + 1 / 2 + (1 / 2 + 2 / 3) / 2) / 3
    assert m["photo->note/map"] == pytest.approx(forward)
    assert m["note->photo/map"] == pytest.approx(backward)
    assert m["map"] == pytest.approx((forward + backward) / 2)


def test_bidirectional_metrics_without_labels_and_constant_embeddings() -> None:
    m = bidirectional_metrics(A, B)
    assert "map" not in m and "precision@10" not in m and "a->b/recall@1" in m
    same = bidirectional_metrics(np.ones((4, 3)), np.ones((4, 3)))
    assert same["recall@1"] == 0.0 and same["median_rank"] == 4.0  # ties never flatter a model


def test_bidirectional_metrics_errors() -> None:
    with pytest.raises(DataError, match=r"'a' have 3 rows and 'b' 2"):
        bidirectional_metrics(A, B[:2])
    with pytest.raises(DataError, match=r"got 2 labels for 3 rows"):
        bidirectional_metrics(A, B, labels=["x", "y"])
    with pytest.raises(DataError, match=r"must be a non-empty \(rows, dim\) matrix"):
        bidirectional_metrics(np.zeros((0, 2)), B)


def test_unlabelled_rows_are_relevant_to_no_query_and_are_not_scored() -> None:
    from omnifuse.evaluation.retrieval import mean_average_precision, precision_at_k

    sim = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.1], [0.1, 0.2, 1.0]])  # (3, 3)
    labels = [None, None, "a"]
    # Two unlabelled rows would be "the same class" if None matched None: precision@2 would be 1.0.
    assert precision_at_k(sim, labels, labels, k=2) == pytest.approx(0.5)  # only query 2: item 2 of its top 2
    assert mean_average_precision(sim, labels, labels) == pytest.approx(1.0)  # query 2 finds itself first
    with pytest.raises(DataError, match="no query has a label"):
        precision_at_k(sim, [None] * 3, labels, k=2)


def test_identical_cells_count_as_correct_answers_when_their_content_ids_are_given() -> None:
    from omnifuse.evaluation.retrieval import bidirectional_metrics, same_content

    # Rows 0 and 1 have the same text (content id 7); their images differ. Text i is closest to image 1-i.
    images = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # (3, 2)
    texts = np.array([[0.1, 1.0], [1.0, 0.1], [-1.0, 0.0]])  # (3, 2)
    plain = bidirectional_metrics(images, texts, names=("image", "text"))
    assert plain["text->image/recall@1"] == pytest.approx(1 / 3)  # only row 2 finds its own image
    ids = bidirectional_metrics(images, texts, names=("image", "text"), content_b=np.array([7, 7, 9]))
    assert ids["text->image/recall@1"] == pytest.approx(1.0)  # an identical text cannot tell 0 from 1
    assert ids["image->text/recall@1"] == pytest.approx(1.0)
    assert same_content(None, np.array([7, 7, 9]), 3).tolist() == [
        [True, True, False], [True, True, False], [False, False, True]]
    assert same_content(None, None, 2).tolist() == [[True, False], [False, True]]
