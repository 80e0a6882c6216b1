"""The Optuna study of ``omnifuse tune``: storage, sampler, pruner, and the worker processes that share it.

A study lives in an Optuna RDB storage: by default an SQLite file ``DIR/study.db``; any other URL
(``postgresql://user:pass@host/db``, ``mysql://...``) is passed to Optuna as it is, so that several
machines can run ``omnifuse tune`` on one study (Optuna's own distributed mode). Opening a study that
exists (same storage, same name) resumes it.

``--workers K`` runs this call's trials in K processes on the same storage: this one and K - 1
subprocesses (``python -m omnifuse.tuning.worker``, so a user's script needs no ``__main__`` guard), each
with one torch thread, each running Optuna's optimisation loop and taking trials from one shared count
(``TrialBudget``), so that together they run exactly the trials asked for. A worker gets its ``WorkerJob``
as JSON on stdin (``job_to_json`` / ``job_from_json``; no pickle): its tables must be file paths and its
pruner a name (an in-memory DataFrame or an Optuna pruner object cannot travel, and is refused).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError, MissingExtraError, OmnifuseError, TuneError
from omnifuse.registry import unknown_name_message
from omnifuse.training.interrupt import TrainingInterrupted
from omnifuse.tuning.objective import Objective, PreparedCache, Tables, TrialSetup, TrialUserError
from omnifuse.tuning.report import trial_line
from omnifuse.tuning.space import Param
from omnifuse.workflows.prepare import RunContext, TableLike

TUNE_EXTRA = "pip install 'omnifuse[tune]'"
PRUNERS = ("median", "hyperband", "none")
STUDY_DB = "study.db"
SQLITE_TIMEOUT_S = 60  # how long a process waits for another's write lock on the SQLite file
WORKER_SEED_STRIDE = 1000  # worker w samples with seed + 1000 w: parallel workers draw different trials
JOIN_GRACE_S = 30.0  # after a failure here, how long the other workers get to end their trial
INTERRUPTED = ("tune interrupted (Ctrl-C): the study keeps its finished trials and marks the interrupted "
               "ones failed; run the same command again to resume it")


@dataclass(frozen=True)
class StudySettings:
    """How this call runs its study.

    Attributes:
        storage: an Optuna RDB URL.
        study_name: the study in that storage (created, or resumed when it exists).
        trials: the trials this call runs, over all its workers.
        workers: processes running trials.
        pruner: ``median``, ``hyperband``, ``none`` or an Optuna pruner object.
        max_epochs: the largest ``training.epochs`` a trial can have (Hyperband's maximum resource).
        deadline: ``time.time()`` after which no trial starts; None for no limit.
    """

    storage: str
    study_name: str
    trials: int
    workers: int = 1
    pruner: Any = "median"
    max_epochs: int = 20
    deadline: float | None = None


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs (sent to spawned workers as JSON: ``job_to_json``)."""

    setup: TrialSetup
    tables: Tables
    settings: StudySettings
    seed: int  # training.seed: the sampler's seed
    budget: TrialBudget  # the trials left to this call, shared by its workers


def require_optuna() -> None:
    """Raises MissingExtraError naming the extra when Optuna is not installed."""
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise MissingExtraError(f"omnifuse tune needs optuna: {TUNE_EXTRA}")


def storage_url(out: Path, storage: str | None) -> str:
    """``storage``, or the default SQLite file ``out/study.db`` (an absolute path)."""
    return storage or f"sqlite:///{(Path(out) / STUDY_DB).resolve()}"


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages and reports."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_storage(url: str) -> Any:
    """An Optuna RDBStorage for ``url`` (SQLite waits up to SQLITE_TIMEOUT_S for another writer's lock).

    Raises:
        ConfigError: the URL is malformed, its database driver is not installed, or it cannot be reached.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except (ImportError, ValueError, SQLAlchemyError) as exc:
        raise ConfigError([f"--storage {shown_url(url)!r}: cannot open it ({type(exc).__name__}: {exc}); "
                           "give an Optuna RDB URL such as sqlite:///study.db or "
                           "postgresql://user:pass@host/db, with its driver installed (e.g. pip install "
                           "'psycopg[binary]') and the server reachable"]) from None


def make_pruner(pruner: Any, max_epochs: int) -> Any:
    """The Optuna pruner for ``median`` (MedianPruner: after 3 complete trials, from the second epoch on),
    ``hyperband`` (HyperbandPruner over 1..max_epochs epochs, reduction factor 3) or ``none``; an
    Optuna pruner object is used as it is.

    Raises:
        ConfigError: an unknown pruner name.
    """
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1),
                                              reduction_factor=3)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError([f"--pruner: {unknown_name_message('pruner', pruner, list(PRUNERS))}"])


def open_study(settings: StudySettings, setup: TrialSetup, seed: int, worker: int = 0) -> Any:
    """Creates the study, or loads it when it exists, with this worker's TPE sampler.

    The sampler's seed is ``seed + 1000 * worker + the trials already in the study``: a run is repeatable,
    and neither a resumed run nor a parallel worker repeats the draws of another.

    Raises:
        ConfigError: the storage cannot be opened, or the existing study optimises another metric.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by trial_line
    study = optuna.create_study(storage=make_storage(settings.storage), study_name=settings.study_name,
                                direction=cast(Any, setup.direction), load_if_exists=True,
                                pruner=make_pruner(settings.pruner, settings.max_epochs))
    stored = study.user_attrs.get("monitor")
    direction = study.direction.name.lower()
    if (stored is not None and stored != setup.monitor) or direction != setup.direction:
        raise ConfigError([f"--study-name {settings.study_name!r}: this study in "
                           f"{shown_url(settings.storage)} was started to {direction} "
                           f"{stored or 'another metric'}, this config's training.monitor is "
                           f"{setup.monitor!r} ({setup.direction}); choose another --study-name, or the "
                           "monitor the study was started with"])
    if stored is None:
        study.set_user_attr("monitor", setup.monitor)
    study.sampler = optuna.samplers.TPESampler(seed=seed + WORKER_SEED_STRIDE * worker + len(study.trials))
    return study


class TrialBudget:
    """How many trials this call may still start, shared by its worker processes through a small SQLite
    file (one row: the count taken so far), so that together they run exactly ``total``.

    Args:
        path: the count's file (made by ``create``).
        total: the trials of this call.
    """

    def __init__(self, path: Path, total: int) -> None:
        self.path, self.total = path, total

    @classmethod
    def create(cls, path: Path, total: int) -> TrialBudget:
        """A new budget with nothing taken."""
        path.unlink(missing_ok=True)
        with closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE taken (n INTEGER NOT NULL)")
            db.execute("INSERT INTO taken VALUES (0)")
            db.commit()
        return cls(path, total)

    def take(self) -> bool:
        """Takes one trial; False when all ``total`` are taken."""
        with closing(sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_S, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock: no other worker reads the count meanwhile
            ((taken,),) = db.execute("SELECT n FROM taken").fetchall()
            if taken >= self.total:
                db.execute("ROLLBACK")
                return False
            db.execute("UPDATE taken SET n = n + 1")
            db.execute("COMMIT")
            return True


def run_trials(study: Any, objective: Objective, take: Callable[[], bool], deadline: float | None,
               console: Console) -> None:
    """Runs trials while ``take()`` grants one and the deadline has not passed (worker 0 runs one even
    after it, as Optuna's own timeout does); each is printed."""
    monitor, worker = objective.setup.monitor, objective.worker

    def show(_study: Any, trial: Any) -> None:
        console.print(trial_line(trial, monitor, worker), markup=False, highlight=False)

    first = worker == 0
    while (first or deadline is None or time.time() < deadline) and take():
        first = False
        study.optimize(objective, n_trials=1, catch=(TrialUserError,), callbacks=[show], gc_after_trial=True)


def run_worker(job: WorkerJob, worker: int, console: Console, cache: PreparedCache | None = None) -> None:
    """One worker's part of the study: open it, then run trials until the shared budget is used up."""
    study = open_study(job.settings, job.setup, job.seed, worker)
    if cache is None:
        cache = PreparedCache(job.tables, RunContext(job.setup.out, Console(quiet=True), progress=False))
    objective = Objective(job.setup, cache, worker)
    run_trials(study, objective, job.budget.take, job.settings.deadline, console)


def worker_main(job: WorkerJob, worker: int) -> None:
    """The body of a spawned worker (``python -m omnifuse.tuning.worker``): one torch thread; a user error
    is printed and exits with 2, Ctrl-C with 130 (a crash exits with 1 and its traceback)."""
    import torch

    torch.set_num_threads(1)
    console = Console(stderr=True)
    try:
        run_worker(job, worker, console)
    except TrainingInterrupted:
        sys.exit(130)
    except OmnifuseError as exc:
        console.print(f"[bold red]tune worker {worker}: error:[/bold red] ", end="")
        console.print(str(exc), markup=False, highlight=False)
        sys.exit(2)


# -- the job as JSON, for spawned workers ---------------------------------------------------------------

def job_to_json(job: WorkerJob) -> str:
    """``job`` as JSON text for a spawned worker (``job_from_json`` reads it back).

    Raises:
        ConfigError: a table is an in-memory DataFrame, or the pruner is an Optuna object: neither can be
            sent to another process (pass the tables as file paths and the pruner by name).
    """
    setup, tables = job.setup, job.tables
    settings = replace(job.settings, pruner=_pruner_to_json(job.settings.pruner, job.settings.workers))
    return json.dumps({
        "setup": {"base": setup.base.to_dict(), "params": [asdict(p) for p in setup.params],
                  "out": str(setup.out), "monitor": setup.monitor, "direction": setup.direction,
                  "deadline": setup.deadline},
        "tables": {"train": _table_to_json("train", tables.train, settings.workers),
                   "valid": _table_to_json("valid", tables.valid, settings.workers),
                   "base_dir": _path_to_json(tables.base_dir)},
        "settings": asdict(settings),
        "seed": job.seed,
        "budget": {"path": str(job.budget.path), "total": job.budget.total},
    })


def job_from_json(text: str) -> WorkerJob:
    """The ``WorkerJob`` that ``job_to_json`` wrote as ``text``."""
    raw = json.loads(text)
    setup, tables = raw["setup"], raw["tables"]
    params = [Param(**{**p, "choices": tuple(p["choices"])}) for p in setup["params"]]
    return WorkerJob(
        setup=TrialSetup(Config.from_dict(setup["base"]), params, Path(setup["out"]), setup["monitor"],
                         setup["direction"], setup["deadline"]),
        tables=Tables(_path_from_json(tables["train"]), _path_from_json(tables["valid"]),
                      _path_from_json(tables["base_dir"])),
        settings=StudySettings(**raw["settings"]),
        seed=int(raw["seed"]),
        budget=TrialBudget(Path(raw["budget"]["path"]), int(raw["budget"]["total"])),
    )


def _path_to_json(value: str | Path | None) -> str | dict[str, str] | None:
    """A str stays a JSON string, a Path becomes ``{"path": ...}``: the worker gets the same type back."""
    return {"path": str(value)} if isinstance(value, Path) else value


def _path_from_json(value: Any) -> Any:
    """The str, Path or None that ``_path_to_json`` wrote."""
    return Path(value["path"]) if isinstance(value, dict) else value


def _table_to_json(name: str, table: TableLike | None, workers: int) -> str | dict[str, str] | None:
    """A table's path as JSON; an in-memory table is refused (``ConfigError``)."""
    if table is None or isinstance(table, (str, Path)):
        return _path_to_json(table)
    raise ConfigError([f"{name}: an in-memory {type(table).__name__} cannot be sent to the --workers "
                       f"{workers} worker processes; pass the {name} table as a file path (e.g. "
                       f"{name}='{name}.csv'), or use workers=1"])


def _pruner_to_json(pruner: Any, workers: int) -> str:
    """The pruner's name; an Optuna pruner object is refused (``ConfigError``)."""
    if isinstance(pruner, str):
        return pruner
    raise ConfigError([f"pruner: an Optuna pruner object ({type(pruner).__name__}) cannot be sent to the "
                       f"--workers {workers} worker processes; give its name ({', '.join(PRUNERS)}), or use "
                       "workers=1"])


def spawn_worker(payload: str, worker: int) -> subprocess.Popen[bytes]:
    """Starts ``python -m omnifuse.tuning.worker WORKER`` with ``payload`` (``job_to_json``) on its stdin
    and this process's import path, so that it imports the same omnifuse."""
    path = os.pathsep.join(p for p in sys.path if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "omnifuse.tuning.worker", str(worker)],
                               stdin=subprocess.PIPE, env=env)
    assert process.stdin is not None, "opened with stdin=PIPE"
    process.stdin.write(payload.encode("utf-8"))
    process.stdin.close()
    return process


def run_study(job: WorkerJob, cache: PreparedCache, console: Console) -> None:
    """Runs this call's trials here and in ``workers - 1`` spawned processes on the same storage.

    Raises:
        ConfigError: ``workers`` > 1 with an in-memory table or a pruner object (see ``job_to_json``).
        TuneError: a worker stopped on a user error (printed by it). RuntimeError: a worker crashed.
        TrainingInterrupted: Ctrl-C.
    """
    import torch

    try:
        payload = job_to_json(job) if job.settings.workers > 1 else ""
    except ConfigError:
        job.budget.path.unlink(missing_ok=True)
        raise
    open_study(job.settings, job.setup, job.seed)  # create it before the workers load it
    workers = [spawn_worker(payload, w) for w in range(1, job.settings.workers)]
    threads = torch.get_num_threads()
    if workers:
        torch.set_num_threads(1)
    grace: float | None = None
    try:
        run_worker(job, 0, console, cache)
    except TrainingInterrupted:  # Ctrl-C: the Trainer's message would advise `train --resume`
        grace = JOIN_GRACE_S
        raise TrainingInterrupted(INTERRUPTED) from None
    except BaseException:
        grace = JOIN_GRACE_S
        raise
    finally:
        torch.set_num_threads(threads)
        _wait(workers, grace)
        job.budget.path.unlink(missing_ok=True)
    _check_exit_codes(workers)


def _wait(workers: list[subprocess.Popen[bytes]], grace: float | None) -> None:
    for process in workers:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()


def _check_exit_codes(workers: list[subprocess.Popen[bytes]]) -> None:
    codes = {f"worker {w}": p.returncode for w, p in enumerate(workers, start=1) if p.returncode != 0}
    if not codes:
        return
    shown = ", ".join(f"{name} (exit code {code})" for name, code in codes.items())
    if all(code == 130 for code in codes.values()):
        raise TrainingInterrupted(f"{INTERRUPTED} ({shown})")
    if all(code in (2, 130) for code in codes.values()):
        raise TuneError(f"tune worker(s) stopped on an error, printed above: {shown}; fix it and run the "
                        "same command again to resume the study")
    raise TuneError(f"tune worker(s) crashed: {shown}; see the traceback(s) above")
