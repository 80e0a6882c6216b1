"""``omnifuse.tune``: runs a study over the config's ``search:`` section and writes its outputs.

The study folder ``out`` gets ``study.db`` (the default storage), ``trials/<n>/`` (each trial's model
folder; only the best keeps its weights, the others keep train_log.csv and config.yaml),
``best_config.yaml``, ``best_model/`` (a model folder like ``omnifuse train`` writes, with its report),
``trials.csv`` and ``report.md`` with ``plots/``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from omnifuse.api import _final_reports
from omnifuse.artifacts import folder as artifacts
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.inference.predictor import load
from omnifuse.training.loop import LOG_FILE, FitResult
from omnifuse.tuning.objective import (
    PreparedCache,
    Tables,
    TrialSetup,
    apply_values,
    fit_and_save,
    monitor_of,
    strip_weights,
    trial_folder,
    values_of,
)
from omnifuse.tuning.report import StudyInfo, best_trials_table, trials_frame, write_report
from omnifuse.tuning.space import parse_space
from omnifuse.tuning.study import (
    StudySettings,
    TrialBudget,
    TuneError,
    WorkerJob,
    make_pruner,
    require_optuna,
    run_study,
    shown_url,
    storage_url,
)
from omnifuse.workflows.prepare import RunContext, TableLike

BEST_CONFIG = "best_config.yaml"
BEST_MODEL = "best_model"
TRIALS_CSV = "trials.csv"
STUDY_FILE = "study.json"  # the study this folder belongs to


@dataclass(frozen=True)
class TuneResult:
    """What ``omnifuse.tune`` found and where it wrote it.

    Attributes:
        best_value: the best trial's validation ``monitor``.
        best_params: the best trial's value of each searched key (config values).
        best_trial: the best trial's number.
        best_config: the config with the best values (``search`` emptied), as in ``best_config``.
        monitor / direction: what the study optimises (``maximize`` or ``minimize``).
        trials: how many trials the study holds after this call (of every state, every machine).
        study_name / storage: the study and its storage URL (password hidden).
        out / best_config_path / best_model / trials_csv / report: the files written.
    """

    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    best_config: Config
    monitor: str
    direction: str
    trials: int
    study_name: str
    storage: str
    out: Path
    best_config_path: Path
    best_model: Path
    trials_csv: Path
    report: Path


def tune(
    config: Config | str | Path,
    train: TableLike,
    valid: TableLike | None = None,
    out: str | Path = "omnifuse_tune",
    *,
    trials: int = 20,
    time_limit: float | None = None,
    storage: str | None = None,
    workers: int = 1,
    pruner: Any = "median",
    study_name: str = "omnifuse",
    base_dir: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> TuneResult:
    """Searches the config's ``search:`` section with Optuna (TPE sampling seeded with ``training.seed``,
    pruning on the per-epoch validation metric) and writes the best config, model and a report to ``out``.

    Args:
        config: a Config or the path of a YAML config with a ``search:`` section.
        train / valid: tables; without ``valid`` a seeded split of ``train`` is used (as in ``train``).
        out: the study folder (see the module docstring); a second call with the same storage and study
            name resumes the study and adds ``trials`` more.
        trials: trials this call runs (over all workers).
        time_limit: seconds for the whole call: no trial starts after it (the first always does), and
            each trial's ``training.time_limit`` is capped at what is left (at least a second).
        storage: an Optuna RDB URL (default ``sqlite:///<out>/study.db``); several machines running
            ``tune`` on one URL share the study.
        workers: processes running trials on the same storage (each with one torch thread).
        pruner: ``median``, ``hyperband``, ``none`` or an Optuna pruner object.
        study_name: the study in the storage.
        base_dir: folder that relative file paths in the tables are resolved against.
    Returns:
        A TuneResult.
    Raises:
        ConfigError: a bad config, search space, option or storage. DataError, BadRowError: bad tables.
        TuneError: no trial completed (the report lists why), or a worker stopped on an error.
        MissingExtraError: Optuna is not installed (``pip install 'omnifuse[tune]'``).
    """
    require_optuna()
    started = time.time()
    console = console or Console()
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    _check_call(cfg, trials, workers, time_limit)
    params, _ = parse_space(cfg.search)  # validated with the config
    monitor, direction = monitor_of(cfg)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    deadline = started + time_limit if time_limit else None
    setup = TrialSetup(cfg, params, folder, monitor, direction, deadline)
    settings = StudySettings(storage_url(folder, storage), study_name, trials, min(workers, trials), pruner,
                             _max_epochs(cfg), deadline)
    make_pruner(pruner, settings.max_epochs)  # an unknown name fails before any work
    _claim_folder(folder, settings)
    tables = Tables(train, valid, base_dir)
    cache = PreparedCache(tables, RunContext(folder, console, progress))
    cache.get(apply_values(cfg, {}))  # the tables are read once up front: bad input stops here
    console.print(f"Tuning {len(params)} key(s) with {trials} trial(s) on {settings.workers} worker(s), "
                  f"{direction} {monitor}; study {study_name!r} in {shown_url(settings.storage)}")
    budget = TrialBudget.create(folder / f".budget-{os.getpid()}.db", trials)
    run_study(WorkerJob(setup, tables, settings, cfg.training.seed, budget), cache, console)
    return _finish(setup, settings, cache, console)


def _check_call(cfg: Config, trials: int, workers: int, time_limit: float | None) -> None:
    problems = []
    if not cfg.search:
        problems.append("search: is empty; list the keys to tune, e.g. search: {training.lr: "
                        "{loguniform: [1e-4, 1e-2]}, fusion.name: {choice: [concat, attention]}}")
    if trials < 1:
        problems.append(f"--trials: must be >= 1, got {trials}")
    if workers < 1:
        problems.append(f"--workers: must be >= 1, got {workers}")
    if time_limit is not None and time_limit <= 0:
        problems.append(f"--time-limit: must be > 0 seconds, got {time_limit}; leave it out for no limit")
    t = cfg.training
    if str(t.devices) != "1" or t.num_nodes != 1 or t.strategy in ("ddp", "fsdp"):
        problems.append(f"training.devices / num_nodes / strategy: tune trains every trial in one process "
                        f"(got devices {t.devices!r}, num_nodes {t.num_nodes}, strategy {t.strategy!r}); set "
                        "devices: 1, num_nodes: 1, strategy: auto, and run trials side by side with "
                        "--workers")
    if problems:
        raise ConfigError(problems)


def _claim_folder(folder: Path, settings: StudySettings) -> None:
    """Records which study ``folder`` belongs to (``study.json``): trial folders are named by trial number,
    so two studies in one folder would overwrite each other's.

    Raises:
        ConfigError: the folder belongs to another study.
    """
    path = folder / STUDY_FILE
    mine = {"study_name": settings.study_name, "storage": shown_url(settings.storage)}
    if path.is_file():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        if theirs != mine:
            raise ConfigError([f"--out {str(folder)!r} holds study {theirs.get('study_name')!r} in "
                               f"{theirs.get('storage')}; its trial folders would be overwritten by study "
                               f"{mine['study_name']!r} in {mine['storage']}: choose another --out, or "
                               "resume that study with its --study-name and --storage"])
        return
    path.write_text(json.dumps(mine, indent=2), encoding="utf-8")


def _max_epochs(cfg: Config) -> int:
    """``training.epochs``, or the top of its searched range."""
    spec = cfg.search.get("training.epochs", {})
    bounds = spec.get("int") or spec.get("choice") or [cfg.training.epochs]
    return max(int(b) for b in bounds)


def _finish(setup: TrialSetup, settings: StudySettings, cache: PreparedCache, console: Console) -> TuneResult:
    """Writes trials.csv, best_config.yaml, best_model/ and report.md; drops the other trials' weights."""
    from omnifuse.tuning.study import open_study

    study = open_study(settings, setup, 0)
    out = setup.out
    frame = trials_frame(study.trials)
    frame.to_csv(out / TRIALS_CSV, index=False)
    info = StudyInfo(settings.study_name, shown_url(settings.storage), setup.monitor, setup.direction,
                     BEST_CONFIG, BEST_MODEL)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        report = write_report(out, study, frame, replace(info, best_config="", best_model=""))
        errors = [e for e in frame["error"] if e][:1]
        raise TuneError(f"no trial of study {settings.study_name!r} completed (first error: "
                        f"{errors[0] if errors else 'none recorded'}); see {report} and {out / TRIALS_CSV}")
    best = study.best_trial
    values = values_of(setup.params, best.params)
    best_cfg = apply_values(setup.base, values)
    _write_best_config(out / BEST_CONFIG, best_cfg, best.number, best.value, setup.monitor)
    _save_best_model(best, best_cfg, cache, out / BEST_MODEL, console)
    for trial in complete:
        if trial.number != best.number:
            strip_weights(trial_folder(out, trial.number))
    report = write_report(out, study, frame, info)
    console.print(best_trials_table(frame, setup.monitor, setup.direction))
    console.print(f"[green]Best: trial {best.number}, {setup.monitor} {best.value:.4f}.[/green] Wrote "
                  f"{out / BEST_CONFIG}, {out / BEST_MODEL}, {out / TRIALS_CSV} and {report}")
    return TuneResult(float(best.value), values, best.number, best_cfg, setup.monitor, setup.direction,
                      len(study.trials), settings.study_name, info.storage, out, out / BEST_CONFIG,
                      out / BEST_MODEL, out / TRIALS_CSV, report)


def _write_best_config(path: Path, cfg: Config, number: int, value: float, monitor: str) -> None:
    header = (f"# The best config of `omnifuse tune`: trial {number}, validation {monitor} {value:.4f}.\n"
              f"# Train it with: omnifuse train --config {path.name} --train TABLE --out model/\n")
    path.write_text(header + yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")


def _save_best_model(best: Any, cfg: Config, cache: PreparedCache, target: Path, console: Console) -> None:
    """Copies the best trial's model folder to ``target`` with a training report; when that folder is not
    on this machine (the trial ran elsewhere on a shared storage), trains the best config here instead."""
    source = Path(str(best.user_attrs.get("folder", "")))
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    data = cache.get(cfg)
    if (source / artifacts.WEIGHTS).is_file():
        shutil.copytree(source, staging)
        result = FitResult(_read_log(staging / LOG_FILE), int(best.user_attrs.get("best_epoch", 1)) - 1,
                           float(best.value), str(best.user_attrs.get("stop_reason", "")))
    else:
        console.print(f"Trial {best.number}'s model folder {source} is not on this machine: training its "
                      f"config again for {target}")
        result = fit_and_save(cfg, data, staging)
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    _final_reports(load(staging), data, result, RunContext(staging, Console(quiet=True), False))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _read_log(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a train_log.csv (numbers as floats, epoch as int)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v not in ("", None)}
            for row in rows]
