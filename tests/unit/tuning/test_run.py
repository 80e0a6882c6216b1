"""``omnifuse.tune``'s checks of its own arguments, before any table is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.tuning.run import _max_epochs, _read_log

RAW: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {"x": {"type": "numeric"}},
    "search": {"training.lr": {"loguniform": [1e-4, 1e-2]}},
}


def _tune(tmp_path: Path, raw: dict[str, Any], **options: Any) -> None:
    omnifuse.tune(Config.from_dict(raw), tmp_path / "no_such_table.csv", None, tmp_path / "out",
                  progress=False, **options)


@pytest.mark.parametrize(("raw", "options", "message"), [
    ({**RAW, "search": {}}, {}, r"search: is empty; list the keys to tune, e\.g\. search: \{training\.lr"),
    (RAW, {"trials": 0}, r"--trials: must be >= 1, got 0"),
    (RAW, {"workers": 0}, r"--workers: must be >= 1, got 0"),
    (RAW, {"time_limit": -5}, r"--time-limit: must be > 0 seconds, got -5; leave it out for no limit"),
    ({**RAW, "training": {"devices": 2, "strategy": "ddp"}}, {},
     r"tune trains every trial in one process \(got devices 2, num_nodes 1, strategy 'ddp'\)"),
    (RAW, {"pruner": "medain"}, r"--pruner: unknown pruner 'medain'\. Did you mean 'median'\?"),
])
def test_bad_arguments_are_config_errors_before_any_work(tmp_path: Path, raw: dict[str, Any],
                                                         options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _tune(tmp_path, raw, **options)
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_folder_of_another_study_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "study.json").write_text('{"study_name": "first", "storage": "sqlite:///x.db"}')
    with pytest.raises(ConfigError, match=r"--out '.*out' holds study 'first' in sqlite:///x\.db; its trial "
                                          r"folders would be overwritten by study 'omnifuse'"):
        _tune(tmp_path, RAW)


def test_max_epochs_is_the_top_of_a_searched_epoch_range() -> None:
    assert _max_epochs(Config.from_dict(RAW)) == 40
    assert _max_epochs(Config.from_dict({**RAW, "search": {"training.epochs": {"int": [2, 9]}}})) == 9
    assert _max_epochs(Config.from_dict({**RAW, "search": {"training.epochs": {"choice": [3, 12, 5]}}})) == 12


def test_read_log_turns_a_train_log_back_into_records(tmp_path: Path) -> None:
    path = tmp_path / "train_log.csv"
    path.write_text("epoch,train_loss,accuracy\n1,0.9,0.5\n2,0.7,\n")
    assert _read_log(path) == [{"epoch": 1, "train_loss": 0.9, "accuracy": 0.5},
                               {"epoch": 2, "train_loss": 0.7}]
    assert _read_log(tmp_path / "missing.csv") == []
