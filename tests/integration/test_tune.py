"""`omnifuse tune` end to end on the small real table: outputs, resuming (Python API, then the CLI), pruning,
a failing trial, the prepared-data cache and several worker processes on one SQLite file."""

from __future__ import annotations

import copy
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.tuning.objective import PreparedCache, Tables, apply_values
from omnifuse.tuning.run import TuneResult
from omnifuse.workflows.prepare import RunContext

RAW: dict[str, Any] = {
    "label": {"column": "animal", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image",
                  "encoder": {"name": "small_cnn", "size": 16, "channels": 1, "widths": [8, 16]}},
        "weight": {"type": "numeric"},
        "colour": {"type": "categorical"},
        "sound": {"type": "ignore"},
        "note": {"type": "ignore"},
    },
    "fusion": "concat",
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.003, "patience": 2},
    "search": {
        "training.lr": {"loguniform": ["1e-4", "1e-2"]},
        "fusion.name": {"choice": ["concat", "attention"]},
        "fusion.dim": {"int": [8, 32]},
        "head.dropout": {"uniform": [0, 0.3]},
    },
}


def _config(**changes: Any) -> Config:
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return Config.from_dict(raw)


def _quiet() -> Console:
    return Console(quiet=True)


def _queued_study(out: Path, *params: dict[str, Any]) -> None:
    """Creates the study ``tune`` resumes, with ``params`` queued as its first trials."""
    out.mkdir()
    study = optuna.create_study(study_name="omnifuse", storage=f"sqlite:///{out / 'study.db'}",
                                direction="maximize")
    for values in params:
        study.enqueue_trial(values)


def _tune(config: Config, tables: Path, out: Path, **options: Any) -> TuneResult:
    return omnifuse.tune(config, tables / "train.csv", tables / "test.csv", out, progress=False,
                         console=_quiet(), **options)


def test_tune_writes_best_config_model_trials_and_report_then_resumes(table_dir: Path,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "study"
    result = _tune(_config(), table_dir, out, trials=3)
    assert result.trials == 3 and result.monitor == "accuracy" and result.direction == "maximize"
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2] and set(trials["state"]) == {"complete"}
    assert result.best_value == trials["value"].max()
    assert {"training.lr", "fusion.name", "head.dropout", "seconds"} <= set(trials.columns)
    best = Config.from_yaml(out / "best_config.yaml")  # a normal config: loads, no search section
    assert best.search == {} and best.training.lr == pytest.approx(result.best_params["training.lr"])
    assert best.fusion.name == result.best_params["fusion.name"]
    predictor = omnifuse.load(out / "best_model")
    assert len(predictor.predict(pd.read_csv(table_dir / "test.csv"), base_dir=table_dir)) == 24
    gate = predictor.model.gate  # finished as `omnifuse train` finishes a model (24 validation rows)
    assert gate is not None and gate.fitted == sorted(predictor.model.encoders)
    assert (out / "best_model" / "report.md").exists() and (out / "best_model" / "metrics.json").exists()
    with_weights = [p.parent.name for p in (out / "trials").glob("*/model.safetensors")]
    assert with_weights == [str(result.best_trial)]  # the others keep only their log and config
    assert all((out / "trials" / str(n) / "train_log.csv").exists() for n in range(3))
    report = (out / "report.md").read_text()
    assert "![optimisation history](plots/history.png)" in report
    assert "![parameter importances](plots/importances.png)" in report
    assert (out / "plots" / "history.png").exists() and (out / "plots" / "importances.png").exists()

    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(RAW))
    resumed = CliRunner().invoke(app, [
        "tune", "--config", str(config_file), "--train", str(table_dir / "train.csv"),
        "--valid", str(table_dir / "test.csv"), "--out", str(out), "--trials", "1", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert "Best trials" in resumed.output
    assert list(pd.read_csv(out / "trials.csv")["number"]) == [0, 1, 2, 3]
    study = optuna.load_study(study_name="omnifuse", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4


def test_pruning_stops_a_trial_that_is_worse_than_the_median(table_dir: Path, tmp_path: Path) -> None:
    columns = {**RAW["columns"], "photo": {"type": "ignore"}}  # the numbers and categories only
    tabular = _config(columns=columns, training={"epochs": 3, "batch_size": 16, "patience": 3},
                      search={"training.lr": {"choice": [0.03, 1e-6]}})
    out = tmp_path / "study"
    _queued_study(out, {"training.lr": 0.03}, {"training.lr": 1e-6})  # good, then one that cannot learn
    _tune(tabular, table_dir, out, trials=2, pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["complete", "pruned"]
    assert trials["pruned_epoch"][1] in (1, 2)  # before its last epoch
    assert "(1 complete, 1 pruned, 0 failed)" in (out / "report.md").read_text()


def test_a_trial_with_a_bad_value_combination_fails_and_the_study_goes_on(table_dir: Path,
                                                                          tmp_path: Path) -> None:
    columns = {**RAW["columns"], "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}}}
    three_inputs = _config(columns=columns, training={"epochs": 1, "batch_size": 16},
                           search={"fusion.name": {"choice": ["bilinear", "concat"]}})
    out = tmp_path / "study"
    _queued_study(out, {"fusion.name": "bilinear"}, {"fusion.name": "concat"})  # bilinear fuses exactly 2
    result = _tune(three_inputs, table_dir, out, trials=2)
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["failed", "complete"]
    assert "'bilinear' fuses exactly 2 inputs, this config has 3" in trials["error"][0]
    assert result.best_trial == 1 and result.best_params == {"fusion.name": "concat"}
    assert "## Failed trials" in (out / "report.md").read_text()


def test_tables_are_prepared_once_per_preprocessing_setup(table_dir: Path, tmp_path: Path) -> None:
    config = _config()
    cache = PreparedCache(Tables(table_dir / "train.csv", table_dir / "test.csv"),
                          RunContext(tmp_path, _quiet(), progress=False))
    first = cache.get(apply_values(config, {"training.lr": 0.01}))
    assert cache.get(apply_values(config, {"fusion.name": "attention", "head.dropout": 0.2})) is first
    resized = cache.get(apply_values(config, {"columns.photo.encoder.size": 12}))
    assert resized is not first and cache.prepared == 2
    assert resized.examples["train"][0].inputs["photo"]["pixels"].shape[-1] == 12


def test_the_time_limit_ends_the_study_and_caps_the_trial(table_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    slow = _config(training={"epochs": 50, "batch_size": 4, "patience": 50})
    result = _tune(slow, table_dir, out, trials=5, time_limit=0.5)  # spent before the first trial ends
    assert result.trials == 1  # the first trial always runs, no other starts after the limit
    trial = Config.from_yaml(out / "trials" / "0" / "config.yaml")
    assert trial.training.time_limit == 1.0  # capped at what was left (at least a second)
    assert len(pd.read_csv(out / "trials" / "0" / "train_log.csv")) < 50
    assert Config.from_yaml(out / "best_config.yaml").training.time_limit == 0.0  # the user's own value


@pytest.mark.slow  # reason: two worker processes each import torch and omnifuse (about a minute on 2 cores)
def test_two_workers_on_one_sqlite_file_run_exactly_the_trials_asked_for(table_dir: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "study"
    result = _tune(_config(), table_dir, out, trials=4, workers=2)
    trials = pd.read_csv(out / "trials.csv")
    assert result.trials == 4 and list(trials["number"]) == [0, 1, 2, 3]
    assert set(trials["state"]) <= {"complete", "pruned"}
    assert not list(out.glob(".budget-*"))


def _postgres_binaries() -> tuple[str, str] | None:
    """initdb and pg_ctl of a local PostgreSQL, when one is installed (Debian: postgresql)."""
    for folder in [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"))]:
        initdb, pg_ctl = shutil.which("initdb", path=folder), shutil.which("pg_ctl", path=folder)
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a Unix socket (no TCP port), and the URL of its database."""
    binaries = _postgres_binaries()
    if binaries is None or importlib.util.find_spec("psycopg") is None:
        pytest.skip("needs a local PostgreSQL (initdb, pg_ctl) and the psycopg driver")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="omnifuse_pg_"))  # not under pytest's root-only folder
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    initdb, pg_ctl = binaries
    data = folder / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    options = f"-c listen_addresses='' -c unix_socket_directories={folder}"
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@/postgres?host={folder}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow  # reason: a PostgreSQL server, two worker processes and a retrained best model (~1 minute)
def test_a_postgresql_study_shared_by_workers_and_a_second_machine(table_dir: Path, tmp_path: Path,
                                                                    postgres_url: str) -> None:
    first = _tune(_config(), table_dir, tmp_path / "a", trials=4, workers=2, storage=postgres_url)
    assert first.trials == 4 and first.storage.startswith("postgresql://postgres@/postgres")
    shutil.rmtree(tmp_path / "a")  # the second "machine" has none of the first one's trial folders
    console = Console(record=True, width=200)
    second = omnifuse.tune(_config(), table_dir / "train.csv", table_dir / "test.csv", tmp_path / "b",
                           trials=1, storage=postgres_url, progress=False, console=console)
    assert second.trials == 5 and len(pd.read_csv(tmp_path / "b" / "trials.csv")) == 5
    if second.best_trial < 4:  # the best trial ran "elsewhere": its config is trained again here
        assert "is not on this machine: training its config again" in console.export_text()
    assert len(omnifuse.load(tmp_path / "b" / "best_model").predict(pd.read_csv(table_dir / "test.csv"),
                                                                    base_dir=table_dir)) == 24
