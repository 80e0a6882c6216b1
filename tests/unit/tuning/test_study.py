"""The study's storage, pruner and resumption checks, and the trial budget the workers share."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import optuna
import pandas as pd
import pytest
from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.training.interrupt import TrainingInterrupted
from omnifuse.tuning import study as study_module
from omnifuse.tuning.objective import Tables, TrialSetup
from omnifuse.tuning.space import parse_space
from omnifuse.tuning.study import (
    StudySettings,
    TrialBudget,
    TuneError,
    WorkerJob,
    _check_exit_codes,
    job_from_json,
    job_to_json,
    make_pruner,
    make_storage,
    open_study,
    shown_url,
    storage_url,
)

CONFIG = Config.from_dict({"label": {"column": "y", "task": "multiclass"},
                           "columns": {"x": {"type": "numeric"}}})


def test_pruners_by_name_and_an_unknown_name() -> None:
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", 5), optuna.pruners.NopPruner)
    own = optuna.pruners.PercentilePruner(25.0)
    assert make_pruner(own, 5) is own
    with pytest.raises(ConfigError, match=r"--pruner: unknown pruner 'medain'\. Did you mean 'median'\?"):
        make_pruner("medain", 5)


def test_storage_defaults_to_an_sqlite_file_in_the_study_folder_and_hides_passwords(tmp_path: Path) -> None:
    assert storage_url(tmp_path, None) == f"sqlite:///{tmp_path.resolve()}/study.db"
    assert storage_url(tmp_path, "postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    assert shown_url("postgresql://user:secret@host:5432/db") == "postgresql://user:***@host:5432/db"


def test_a_storage_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--storage 'nosuchdb://x': cannot open it .*give an Optuna RDB"):
        make_storage("nosuchdb://x")
    with pytest.raises(ConfigError, match=r"--storage 'sqlite:///.*/missing/study.db': cannot open it"):
        make_storage(f"sqlite:///{tmp_path}/missing/study.db")


def test_resuming_a_study_that_optimises_another_metric_is_refused(tmp_path: Path) -> None:
    settings = StudySettings(storage_url(tmp_path, None), "s", trials=1)
    study = open_study(settings, TrialSetup(CONFIG, [], tmp_path, "accuracy", "maximize"), seed=0)
    assert study.user_attrs["monitor"] == "accuracy"
    again = open_study(settings, TrialSetup(CONFIG, [], tmp_path, "accuracy", "maximize"), seed=0)
    assert again.study_name == "s"
    with pytest.raises(ConfigError, match=r"--study-name 's': this study .* was started to maximize "
                                          r"accuracy, this config's training.monitor is 'loss' \(minimize\)"):
        open_study(settings, TrialSetup(CONFIG, [], tmp_path, "loss", "minimize"), seed=0)


def test_trial_budget_grants_exactly_its_total_across_threads(tmp_path: Path) -> None:
    budget = TrialBudget.create(tmp_path / "budget.db", total=7)
    granted: list[bool] = []

    def take_many() -> None:
        granted.extend(budget.take() for _ in range(5))

    threads = [threading.Thread(target=take_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 7 and len(granted) == 15
    with sqlite3.connect(budget.path) as db:
        assert db.execute("SELECT n FROM taken").fetchall() == [(7,)]


class Exited:
    """A finished worker process with this exit code."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


def test_worker_exit_codes_become_the_right_error() -> None:
    _check_exit_codes([Exited(0), Exited(0)])  # type: ignore[list-item]
    with pytest.raises(TrainingInterrupted, match=r"tune interrupted \(Ctrl-C\).*\(worker 2 \(exit code 130"):
        _check_exit_codes([Exited(0), Exited(130)])  # type: ignore[list-item]
    with pytest.raises(TuneError, match=r"tune worker\(s\) stopped on an error, printed above: worker 1 "):
        _check_exit_codes([Exited(2), Exited(130)])  # type: ignore[list-item]
    with pytest.raises(TuneError, match=r"tune worker\(s\) crashed: worker 1 \(exit code 1\)"):
        _check_exit_codes([Exited(1), Exited(2)])  # type: ignore[list-item]


def test_ctrl_c_in_a_trial_says_how_to_resume_the_study(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise TrainingInterrupted("Interrupted during epoch 2 ... omnifuse train ... --resume")

    monkeypatch.setattr(study_module, "run_worker", interrupted)
    setup = TrialSetup(CONFIG, [], tmp_path, "accuracy", "maximize")
    budget = TrialBudget.create(tmp_path / "budget.db", total=1)
    settings = StudySettings(storage_url(tmp_path, None), "s", 1)
    job = WorkerJob(setup, Tables("train.csv", None), settings, 0, budget)
    with pytest.raises(TrainingInterrupted, match=r"run the same command again to resume it$"):
        study_module.run_study(job, None, Console(quiet=True))  # type: ignore[arg-type]
    assert not budget.path.exists()


SEARCHED = Config.from_dict({**CONFIG.to_dict(), "search": {
    "training.lr": {"loguniform": [1e-4, 1e-2]}, "fusion.name": {"choice": ["concat", "attention"]},
    "head.hidden_dim": {"int": [0, 32]}, "head.dropout": {"uniform": [0, 0.3]}}})


def _job(tmp_path: Path, tables: Tables, pruner: object = "hyperband", workers: int = 3) -> WorkerJob:
    params, _ = parse_space(SEARCHED.search)
    setup = TrialSetup(SEARCHED, params, tmp_path / "study", "accuracy", "maximize", deadline=1.7e9 + 0.25)
    settings = StudySettings(storage_url(tmp_path, None), "s", trials=5, workers=workers, pruner=pruner,
                             max_epochs=7, deadline=1.7e9 + 0.25)
    return WorkerJob(setup, tables, settings, 11, TrialBudget(tmp_path / "budget.db", 5))


@pytest.mark.parametrize("tables", [Tables("train.csv", None), Tables(Path("a/train.csv"), "valid.parquet",
                                                                      Path("media"))])
def test_a_worker_job_survives_its_json_round_trip(tmp_path: Path, tables: Tables) -> None:
    job = _job(tmp_path, tables)
    text = job_to_json(job)
    assert "pickle" not in text
    back = job_from_json(text)
    assert back.setup == job.setup and back.tables == job.tables and back.settings == job.settings
    assert [type(t) for t in (back.tables.train, back.tables.valid, back.tables.base_dir)] == \
        [type(t) for t in (job.tables.train, job.tables.valid, job.tables.base_dir)]  # a str stays a str
    assert back.seed == 11 and (back.budget.path, back.budget.total) == (job.budget.path, 5)


def test_what_cannot_travel_to_a_worker_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0], "y": ["a"]})
    with pytest.raises(ConfigError, match=r"train: an in-memory DataFrame cannot be sent to the --workers 3 "
                                          r"worker processes; pass the train table as a file path"):
        job_to_json(_job(tmp_path, Tables(frame, None)))
    with pytest.raises(ConfigError, match=r"valid: an in-memory DataFrame .*valid='valid.csv'\), or use "):
        job_to_json(_job(tmp_path, Tables("train.csv", frame)))
    with pytest.raises(ConfigError, match=r"pruner: an Optuna pruner object \(PercentilePruner\) cannot be "
                                          r"sent .*give its name \(median, hyperband, none\)"):
        job_to_json(_job(tmp_path, Tables("train.csv", None), optuna.pruners.PercentilePruner(25.0)))


def test_several_workers_with_an_in_memory_table_are_refused_before_the_study_opens(tmp_path: Path) -> None:
    job = _job(tmp_path, Tables(pd.DataFrame({"x": [1.0]}), None))
    TrialBudget.create(job.budget.path, 5)
    with pytest.raises(ConfigError, match=r"train: an in-memory DataFrame"):
        study_module.run_study(job, None, Console(quiet=True))  # type: ignore[arg-type]
    assert not job.budget.path.exists() and not (tmp_path / "study.db").exists()
