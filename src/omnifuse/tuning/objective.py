"""One trial of ``omnifuse tune``: its config, its prepared data (cached), training with pruning, its folder.

A trial draws a value for every searched key (a component's ``name`` first, so that an option the chosen
component lacks is left out of that trial), writes them into the flat config and parses it again with
``Config.from_dict``: every trial's config is validated like a config file, and has ``search`` emptied.

The tables are read and preprocessed once per distinct preprocessing setup (``PreparedCache``): trials that
only change the learning rate, widths or the fusion train on the same prepared rows; a trial that changes a
preprocessing option (``n_mels``, an image ``size``, a vocabulary limit) prepares its own.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lightning_fabric.utilities.seed import seed_everything
from rich.console import Console

from omnifuse.api import fit_prepared, prepare_data
from omnifuse.artifacts import folder as artifacts
from omnifuse.build import make_preprocessors, make_task_for
from omnifuse.config.checks import component_keys
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError, DataError, OmnifuseError
from omnifuse.training.interrupt import TrainingInterrupted
from omnifuse.training.loop import LOG_FILE, FitResult
from omnifuse.tuning.space import Param, component_at, get_value, locate
from omnifuse.workflows.finish import finish_model
from omnifuse.workflows.prepare import PreparedData, RunContext, TableLike

TRIALS_DIR = "trials"
CACHE_SIZE = 2  # distinct preprocessing setups kept in memory
KEEP_AFTER_TRIAL = (LOG_FILE, artifacts.CONFIG)  # what a trial folder keeps once its weights are dropped

EpochCallback = Callable[[int, dict[str, Any]], None]


class TrialUserError(Exception):
    """A trial failed on a user error (a bad value combination); the study records it and goes on."""


@dataclass(frozen=True)
class Tables:
    """The study's tables: training, validation (None: a seeded split of training) and their base folder."""

    train: TableLike
    valid: TableLike | None
    base_dir: str | Path | None = None


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a study shares.

    Attributes:
        base: the study's config (its ``search`` section is the space).
        params: the parsed space.
        out: the study folder; trial ``n`` writes ``out/trials/<n>/``.
        monitor / direction: the validation metric and ``maximize`` or ``minimize``.
        deadline: ``time.time()`` at which the study's time limit ends; None for no limit.
    """

    base: Config
    params: list[Param]
    out: Path
    monitor: str
    direction: str
    deadline: float | None = None


def monitor_of(cfg: Config) -> tuple[str, str]:
    """The validation metric a study optimises and its direction (``maximize`` / ``minimize``), as the
    Trainer's early stopping reads them: accuracy is maximised, rmse minimised, ..."""
    monitor, mode = make_task_for(cfg).monitor(cfg.training.monitor)
    return monitor, "maximize" if mode == "max" else "minimize"


# -- a trial's config -----------------------------------------------------------------------------------

def suggest_values(flat: dict[str, Any], params: list[Param], trial: Any) -> dict[str, Any]:
    """The trial's value of every searched key that applies to it (``trial``: an Optuna trial).

    Component names are drawn first; an option of a component is drawn only when the component the trial
    uses has it (``fusion.rank`` only in trials whose ``fusion.name`` is ``low_rank_tensor``).
    """
    values: dict[str, Any] = {}
    for param in sorted(params, key=lambda p: not p.key.endswith(".name")):  # stable: names first
        if _applies(flat, param.key, values):
            values[param.key] = param.suggest(trial)
    return values


def _component_option(flat: dict[str, Any], key: str) -> tuple[list[str], str] | None:
    """(the component's path, the option) when ``key`` names an option of a component, else None."""
    path, rest = locate(flat, key)
    if rest and "." not in rest and component_at(path):
        return path, rest
    if not rest and len(path) > 1 and component_at(path[:-1]):
        return path[:-1], path[-1]
    return None


def _applies(flat: dict[str, Any], key: str, values: dict[str, Any]) -> bool:
    found = _component_option(flat, key)
    if found is None or found[1] == "name":
        return True
    path, option = found
    kind = component_at(path)
    assert kind is not None, "found by _component_option"
    name = values.get(".".join([*path, "name"]), get_value(flat, path).get("name"))
    return option in (component_keys(kind, str(name)) or {})


def apply_values(config: Config, values: dict[str, Any]) -> Config:
    """``config`` with the trial's values written in and ``search`` emptied, parsed again (validated).

    A component whose ``name`` the trial changes loses the options the new component does not have.

    Raises:
        ConfigError: the combination of values is not a valid config (the trial fails with it).
    """
    flat = config.to_dict()
    flat["search"] = {}
    for key, value in values.items():
        _set(flat, key, value)
    for key, value in values.items():
        found = _component_option(flat, key)
        if found is None or found[1] != "name":
            continue
        kind = component_at(found[0])
        keys = component_keys(kind or "", str(value))
        component = get_value(flat, found[0])
        if keys is not None and isinstance(component, dict):
            for option in [k for k in component if k not in keys]:
                del component[option]
    return Config.from_dict(flat)


def _set(flat: dict[str, Any], key: str, value: Any) -> None:
    path, rest = locate(flat, key)
    parent_path, name = (path, rest) if rest else (path[:-1], path[-1])
    parent = get_value(flat, parent_path)
    if "." in name or not isinstance(parent, dict) or (rest and not component_at(parent_path)):
        raise ConfigError([f"search.{key}: {key!r} is not a key of this config; remove it from search "
                           "(or, for a resumed study, use the search space the study was started with)"])
    parent[name] = value


def values_of(params: list[Param], stored: dict[str, Any]) -> dict[str, Any]:
    """The config values of a finished trial's stored Optuna parameters (choice labels decoded)."""
    by_key = {p.key: p for p in params}
    return {k: by_key[k].decode(v) if k in by_key else v for k, v in stored.items()}


def cap_time_limit(cfg: Config, deadline: float | None) -> Config:
    """``cfg`` with ``training.time_limit`` capped at the seconds left before ``deadline`` (at least 1)."""
    if deadline is None:
        return cfg
    left = max(deadline - time.time(), 1.0)
    limit = cfg.training.time_limit
    if 0 < limit <= left:
        return cfg
    return replace(cfg, training=replace(cfg.training, time_limit=left))


# -- prepared data, once per preprocessing setup -----------------------------------------------------

def preprocessing_key(cfg: Config, split_from_train: bool) -> str:
    """What the prepared rows depend on: the label, the data section, each column's type and missing
    policy, each input's unfitted preprocessor (its class and options) and encoder initialisation, and
    the seed when the validation rows are a seeded split of the training table."""
    plain = cfg.to_dict()
    key = {
        "label": plain["label"],
        "data": plain["data"],
        "contrastive": plain.get("contrastive"),
        "columns": {n: [c["type"], c["allow_missing"]] for n, c in plain["columns"].items()},
        "init": {n: [cfg.encoder_of(n).init_from, cfg.encoder_of(n).init_column] for n in cfg.input_names()},
        "preprocessors": {n: [type(p).__qualname__, p.state_dict()]
                          for n, p in make_preprocessors(cfg).items()},
        "seed": cfg.training.seed if split_from_train else None,
    }
    return json.dumps(key, sort_keys=True, default=str)


class PreparedCache:
    """The prepared tables of the last ``size`` distinct preprocessing setups.

    Args:
        tables: the study's tables.
        ctx: where preparation writes (split.json, bad_rows.csv) and talks.
        size: how many setups stay in memory.
    """

    def __init__(self, tables: Tables, ctx: RunContext, size: int = CACHE_SIZE) -> None:
        self.tables, self.ctx, self.size = tables, ctx, size
        self.entries: OrderedDict[str, PreparedData] = OrderedDict()
        self.prepared = 0  # how many times the tables were read and preprocessed

    def get(self, cfg: Config) -> PreparedData:
        """The prepared rows for ``cfg``: from the cache, or read and preprocessed now.

        Raises:
            DataError, BadRowError, ConfigError: from ``api.prepare_data``.
        """
        key = preprocessing_key(cfg, self.tables.valid is None)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        data = prepare_data(cfg, self.tables.train, self.tables.valid, None, self.ctx,
                            base_dir=self.tables.base_dir)
        self.prepared += 1
        self.entries[key] = data
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return data


# -- training -------------------------------------------------------------------------------------------

def pruning_callback(trial: Any, monitor: str, epochs: int) -> EpochCallback:
    """An epoch callback that reports ``record[monitor]`` to ``trial`` at step ``epoch`` and raises
    ``optuna.TrialPruned`` when the study's pruner says so (the pruned epoch goes to a user attribute).
    After the last of ``epochs`` it only reports: the run is over, pruning would save nothing."""

    def report(epoch: int, record: dict[str, Any]) -> None:
        value = record.get(monitor)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # undefined this epoch (e.g. ROC-AUC with a class absent): nothing to compare
        trial.report(float(value), epoch)
        if epoch + 1 < epochs and trial.should_prune():
            import optuna

            trial.set_user_attr("pruned_epoch", epoch + 1)
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} ({monitor} {value:.4f})")

    return report


def fit_and_save(cfg: Config, data: PreparedData, folder: Path,
                 epoch_callback: EpochCallback | None = None) -> FitResult:
    """Trains ``cfg`` on the prepared rows (seeded, quietly) and saves the model folder to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(folder, Console(quiet=True), progress=False)
    seed_everything(cfg.training.seed, verbose=False)
    model, result = fit_prepared(cfg, data, ctx, epoch_callback=epoch_callback)
    task = finish_model(cfg, data, model, ctx.console)  # its gate and temperature, as train fits them
    artifacts.save_model(folder, cfg, data.preprocessors, task, model)
    return result


def strip_weights(folder: Path) -> None:
    """Deletes a trial folder's model files, keeping its training log and config."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name in KEEP_AFTER_TRIAL:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def could_be_best(trial: Any, value: float, direction: str) -> bool:
    """Whether ``value`` beats every trial the study has completed so far (then the weights are kept)."""
    try:
        best = float(trial.study.best_value)
    except ValueError:  # no complete trial yet
        return True
    return value > best if direction == "maximize" else value < best


def trial_folder(out: Path, number: int) -> Path:
    """The folder of trial ``number``: ``out/trials/<number>/``."""
    return out / TRIALS_DIR / str(number)


class Objective:
    """The function Optuna optimises: one trial -> the best validation ``monitor`` of its run.

    Args:
        setup: what the study's trials share.
        cache: the prepared tables of this process.
        worker: this process's worker index (recorded with each trial).
    """

    def __init__(self, setup: TrialSetup, cache: PreparedCache, worker: int = 0) -> None:
        self.setup, self.cache, self.worker = setup, cache, worker
        self.flat = setup.base.to_dict()

    def __call__(self, trial: Any) -> float:
        """Runs ``trial``; a user error is recorded (user attribute ``error``) and raised as TrialUserError,
        ``optuna.TrialPruned`` and real bugs propagate. The trial's checkpoints are always removed."""
        folder = trial_folder(self.setup.out, trial.number)
        for name, value in (("folder", str(folder.resolve())), ("host", socket.gethostname()),
                            ("worker", self.worker)):
            trial.set_user_attr(name, value)
        try:
            return self._run(trial, folder)
        except TrainingInterrupted:
            raise
        except OmnifuseError as exc:
            trial.set_user_attr("error", str(exc))
            raise TrialUserError(str(exc)) from exc
        finally:
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)

    def _run(self, trial: Any, folder: Path) -> float:
        setup = self.setup
        values = suggest_values(self.flat, setup.params, trial)
        cfg = cap_time_limit(apply_values(setup.base, values), setup.deadline)
        data = self.cache.get(cfg)
        result = fit_and_save(cfg, data, folder, pruning_callback(trial, setup.monitor, cfg.training.epochs))
        trial.set_user_attr("epochs", len(result.history))
        trial.set_user_attr("best_epoch", result.best_epoch + 1)
        trial.set_user_attr("stop_reason", result.stop_reason)
        value = result.best_score
        if value is None or not math.isfinite(value):
            raise DataError(f"trial {trial.number}: the validation metric {setup.monitor!r} was undefined in "
                            "every epoch; choose another training.monitor or a larger validation table")
        if not could_be_best(trial, value, setup.direction):
            strip_weights(folder)
        return float(value)
