"""The time budget of --preset best: equal shares of what is left, and when to stop adding members."""

from __future__ import annotations

import math

from omnifuse.ensemble.best import MIN_MEMBER_SECONDS, Budget, fitting_epochs


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_member_gets_its_share_of_what_is_left() -> None:
    clock = _Clock()
    budget = Budget(12.0, clock)
    assert budget.share(6) == 2.0  # 12 s over 6 members
    assert budget.share(7) == 1.71  # to 0.01 s
    clock.now += 1.0  # the first member stopped early: its unused time goes to the others
    assert budget.left() == 11.0 and budget.share(5) == 2.2
    assert not budget.spent()
    clock.now += 11.0 - MIN_MEMBER_SECONDS / 2
    assert budget.spent() and budget.left() == MIN_MEMBER_SECONDS / 2
    clock.now += 60.0
    assert budget.left() == 0.0 and budget.spent()
    assert budget.share(2) == 0.01  # never 0 s, which would mean no limit at all


def test_without_a_limit_nothing_is_ever_spent() -> None:
    budget = Budget(0.0, _Clock())
    assert budget.share(3) == 0.0  # training.time_limit 0: no limit for the member
    assert budget.left() == math.inf and not budget.spent()


def test_later_members_train_only_the_epochs_that_fit_their_share() -> None:
    assert fitting_epochs(15, 100.0, 30.0) == 3  # 100 s at 30 s an epoch: 3 whole epochs, the schedule ends
    assert fitting_epochs(15, 1000.0, 30.0) == 15  # never more than the config's epochs
    assert fitting_epochs(15, 10.0, 30.0) == 1  # at least one
    assert fitting_epochs(15, 100.0, None) == 15  # the first member: nothing measured yet
    assert fitting_epochs(15, 0.0, 30.0) == 15  # no time limit
