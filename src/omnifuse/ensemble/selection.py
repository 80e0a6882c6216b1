"""Greedy ensemble selection (Caruana, Niculescu-Mizil, Crew and Ksikes 2004, "Ensemble selection from
libraries of models", ICML 2004, https://doi.org/10.1145/1015330.1015432).

Forward selection with replacement: start from an empty ensemble; in every round add the member (possibly
one already in it) whose addition gives the best score of the averaged outputs; after ``rounds`` rounds keep
the shortest prefix of the picks with the best score. A member's weight is the number of times it was
picked. Picking with replacement lets a strong member count several times, and keeping the best prefix
means the ensemble is never worse on the selection rows than the best single member (round one picks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Score = tuple[float, ...]  # compared lexicographically, higher is better (e.g. (accuracy, -log loss))


@dataclass
class Selection:
    """The result of ``greedy_selection``."""

    counts: list[int]  # per member: times picked (its weight); 0: not in the ensemble
    picks: list[int]  # the member picked in each kept round, in order
    scores: list[Score]  # the ensemble's score after each kept round
    rounds: int  # rounds run (before the best prefix was kept)

    @property
    def best(self) -> Score:
        """The ensemble's score."""
        return self.scores[-1]


def greedy_selection(outputs: Sequence[np.ndarray], score: Callable[[np.ndarray], Score],
                     rounds: int) -> Selection:
    """Caruana's forward selection with replacement over the members' ``outputs``.

    Args:
        outputs: per member, its (N, C) outputs on the selection rows in the space they are averaged in
            (class probabilities, or regression predictions); all of one shape.
        score: the score of an (N, C) average (higher is better); ties go to the member listed first.
        rounds: picks to make (at least 1) before the best prefix is kept.

    Returns:
        The counts (weights), the kept picks and the score after each kept pick.
    """
    assert outputs and rounds >= 1, "at least one member and one round"
    total = np.zeros_like(outputs[0], dtype=np.float64)  # (N, C) sum of the picked members' outputs
    picks: list[int] = []
    scores: list[Score] = []
    for _ in range(rounds):
        size = len(picks) + 1
        candidates = [score((total + out) / size) for out in outputs]
        best = max(range(len(outputs)), key=lambda j: (candidates[j], -j))  # first of equal scores
        total += outputs[best]
        picks.append(best)
        scores.append(candidates[best])
    keep = max(range(len(scores)), key=lambda i: (scores[i], -i)) + 1  # shortest prefix with the best score
    counts = [picks[:keep].count(j) for j in range(len(outputs))]
    return Selection(counts, picks[:keep], scores[:keep], rounds)
