"""Caruana greedy selection on hand-made probabilities; the expected weights are worked out in comments."""

from __future__ import annotations

import numpy as np

from omnifuse.ensemble.selection import Score, greedy_selection


def _two_class(p1: list[float]) -> np.ndarray:
    """(N, 2) probabilities from the probability of class 1 per row."""
    p = np.asarray(p1, dtype=np.float64)
    return np.stack([1.0 - p, p], axis=1)


def _accuracy(targets: list[int]) -> object:
    truth = np.asarray(targets)

    def score(mean: np.ndarray) -> Score:
        return (float((mean.argmax(axis=1) == truth).mean()),)

    return score


def test_two_members_that_fix_each_others_mistakes_get_one_pick_each() -> None:
    targets = [0, 0, 1, 1]
    a = _two_class([0.2, 0.1, 0.8, 0.45])  # wrong on row 3 only: accuracy 0.75
    b = _two_class([0.3, 0.6, 0.7, 0.95])  # wrong on row 1 only: accuracy 0.75
    c = _two_class([0.9, 0.9, 0.1, 0.1])  # wrong everywhere
    # round 1: a and b tie at 0.75, a is listed first; round 2: (a+b)/2 = [.25 .35 .75 .7] is all right (1.0);
    # later rounds cannot beat 1.0, so the shortest best prefix is [a, b].
    selection = greedy_selection([a, b, c], _accuracy(targets), rounds=6)  # type: ignore[arg-type]
    assert selection.counts == [1, 1, 0]
    assert selection.picks == [0, 1]
    assert selection.best == (1.0,) and selection.rounds == 6


def test_picking_with_replacement_weights_a_strong_member_twice() -> None:
    targets = [0, 1, 1, 0, 0]
    a = _two_class([0.3, 0.45, 0.9, 0.1, 0.2])  # wrong on row 1: 0.8
    b = _two_class([0.8, 0.9, 0.6, 0.3, 0.95])  # wrong on rows 0 and 4: 0.6
    # round 1: a (0.8); round 2: a+a stays 0.8 while (a+b)/2 = [.55 .675 .75 .2 .575] gets 0.6, so a again;
    # round 3: (2a+b)/3 = [.467 .6 .8 .167 .45] is all right (1.0) while 3a stays 0.8, so b: weights 2 and 1.
    selection = greedy_selection([a, b], _accuracy(targets), rounds=8)  # type: ignore[arg-type]
    assert selection.counts == [2, 1]
    assert selection.picks == [0, 0, 1]
    assert [s[0] for s in selection.scores] == [0.8, 0.8, 1.0]


def test_a_member_that_only_hurts_is_left_out_and_ties_break_on_the_second_score() -> None:
    targets = [0, 1]
    good = _two_class([0.1, 0.9])
    worse = _two_class([0.4, 0.6])  # the same accuracy (1.0), a higher log loss
    bad = _two_class([0.9, 0.1])
    truth = np.asarray(targets)

    def score(mean: np.ndarray) -> Score:
        accuracy = float((mean.argmax(axis=1) == truth).mean())
        return (accuracy, float(np.log(mean[np.arange(2), truth]).mean()))  # (accuracy, -log loss)

    # worse is listed first, but good's lower loss wins round 1; adding anything to good raises the loss.
    selection = greedy_selection([worse, good, bad], score, rounds=5)
    assert selection.counts == [0, 1, 0]
    assert selection.best == score(good)
