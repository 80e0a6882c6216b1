"""Unit tests of early stopping."""

from __future__ import annotations

import json

from omnifuse.training.early_stopping import EarlyStopping


def test_max_mode_tracks_best_and_patience() -> None:
    stop = EarlyStopping("accuracy", "max", patience=2)
    assert stop.update(0.5, 0) is True
    assert stop.update(0.7, 1) is True
    assert stop.update(0.6, 2) is False
    assert (stop.best, stop.best_epoch, stop.bad_epochs, stop.should_stop) == (0.7, 1, 1, False)
    assert stop.update(0.65, 3) is False
    assert stop.bad_epochs == 2 and stop.should_stop


def test_improvement_resets_bad_epochs() -> None:
    stop = EarlyStopping("accuracy", "max", patience=3)
    for epoch, value in enumerate([0.5, 0.4, 0.4, 0.6]):
        stop.update(value, epoch)
    assert stop.bad_epochs == 0 and stop.best_epoch == 3 and not stop.should_stop


def test_min_mode() -> None:
    stop = EarlyStopping("rmse", "min", patience=1)
    assert stop.update(2.0, 0)
    assert stop.update(1.5, 1)
    assert not stop.update(1.7, 2)
    assert stop.best == 1.5 and stop.should_stop


def test_min_delta() -> None:
    stop = EarlyStopping("accuracy", "max", patience=5, min_delta=0.1)
    stop.update(0.5, 0)
    assert not stop.update(0.55, 1)  # not enough
    assert stop.update(0.61, 2)
    low = EarlyStopping("rmse", "min", patience=5, min_delta=0.1)
    low.update(1.0, 0)
    assert not low.update(0.95, 1)
    assert low.update(0.85, 2)


def test_tie_broken_by_lower_loss() -> None:
    stop = EarlyStopping("accuracy", "max", patience=3)
    stop.update(0.8, 0, loss=0.5)
    assert stop.update(0.8, 1, loss=0.4) is True  # same accuracy, lower loss: a better checkpoint
    assert (stop.best_epoch, stop.best_loss) == (1, 0.4)
    assert stop.bad_epochs == 1  # but the metric itself did not improve: patience keeps counting
    assert stop.update(0.8, 2, loss=0.45) is False  # tie with a higher loss
    assert stop.best_epoch == 1 and stop.bad_epochs == 2


def test_tie_without_losses_is_no_improvement() -> None:
    stop = EarlyStopping("accuracy", "max", patience=3)
    stop.update(0.8, 0)
    assert stop.update(0.8, 1, loss=0.1) is False  # no loss recorded for the best epoch
    assert stop.best_epoch == 0


def test_tie_in_min_mode() -> None:
    stop = EarlyStopping("rmse", "min", patience=3)
    stop.update(1.0, 0, loss=1.0)
    assert stop.update(1.0, 1, loss=0.9)
    assert stop.best_epoch == 1


def test_nan_counts_as_no_improvement() -> None:
    stop = EarlyStopping("accuracy", "max", patience=2)
    stop.update(0.5, 0)
    assert stop.update(float("nan"), 1) is False
    assert stop.best == 0.5 and stop.bad_epochs == 1
    assert stop.update(float("nan"), 2) is False
    assert stop.should_stop
    fresh = EarlyStopping("rmse", "min", patience=2)
    assert fresh.update(float("nan"), 0) is False
    assert fresh.best is None and fresh.bad_epochs == 1
    assert fresh.update(3.0, 1) is True  # a finite value after NaN is the first best


def test_reason_text() -> None:
    stop = EarlyStopping("macro_f1", "max", patience=2)
    for epoch, value in enumerate([0.1, 0.8123456, 0.5, 0.4]):
        stop.update(value, epoch)
    assert stop.reason() == "early stopping: macro_f1 did not improve for 2 epoch(s) (best 0.8123 at epoch 2)"


def test_reason_when_every_epoch_was_nan() -> None:
    stop = EarlyStopping("rmse", "min", patience=2)
    stop.update(float("nan"), 0)
    stop.update(float("nan"), 1)
    assert stop.should_stop
    assert stop.reason() == "early stopping: rmse was NaN for 2 epoch(s); lower training.lr"


def test_state_round_trip_through_json() -> None:
    stop = EarlyStopping("accuracy", "max", patience=4, min_delta=0.01)
    stop.update(0.5, 0, loss=1.0)
    stop.update(0.4, 1, loss=1.2)
    state = json.loads(json.dumps(stop.state_dict()))
    assert state == {
        "monitor": "accuracy",
        "mode": "max",
        "patience": 4,
        "min_delta": 0.01,
        "best": 0.5,
        "best_epoch": 0,
        "bad_epochs": 1,
        "best_loss": 1.0,
    }
    other = EarlyStopping("x", "min", patience=1)
    other.load_state_dict(state)
    assert other == stop
    # the restored tracker continues where the first left off
    assert other.update(0.45, 2) is False and other.bad_epochs == 2
