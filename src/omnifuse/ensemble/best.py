"""``--preset best``: trains the members on data preprocessed once, selects an ensemble on the validation
rows, and saves it as one model folder (see ``omnifuse.ensemble.layout``).

With ``training.time_limit`` the budget is split over the members: each one's ``training.time_limit`` is its
share of what is left (time a member does not use goes to the later ones), and no member is started once
less than ``MIN_MEMBER_SECONDS`` are left; what was trained is kept. From the second member on, a member's
``training.epochs`` is also cut to the epochs that fit its share at the previous member's seconds per epoch,
so that its learning-rate schedule (warmup, cosine decay) ends before the clock stops it. The budget counts
from the end of the preprocessing; a member's model building, validation and saving count against it but are
not cut short.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric.utilities.seed import seed_everything
from rich.console import Console
from rich.markup import escape
from torch import Tensor

from omnifuse.api import _prepare_out, fit_prepared, prepare_data
from omnifuse.artifacts import folder as artifacts
from omnifuse.artifacts.manifest import MANIFEST
from omnifuse.artifacts.model_card import write_model_card
from omnifuse.config.sections import Config
from omnifuse.ensemble.combine import combine, from_average, space_of, to_average
from omnifuse.ensemble.layout import MEMBERS, member_dir, remove_ensemble, write_ensemble
from omnifuse.ensemble.predictor import EnsemblePredictor, load_ensemble
from omnifuse.ensemble.report import write_reports
from omnifuse.ensemble.selection import Score, Selection, greedy_selection
from omnifuse.tasks.base import Task
from omnifuse.training.batched_forward import run_model
from omnifuse.training.loop import FitResult
from omnifuse.workflows.compare import collate_rows
from omnifuse.workflows.finish import finish_model
from omnifuse.workflows.prepare import PreparedData, RunContext, TableLike
from omnifuse.workflows.presets import Member, PresetPlan

MIN_MEMBER_SECONDS = 1.0  # with a time limit, no further member is started when less than this is left
SELECTION_ROUNDS = 20  # Caruana rounds (picks with replacement) before the best prefix is kept


class Budget:
    """The time left of ``training.time_limit`` for the members (0: no limit).

    Args:
        limit: seconds for all members together; 0 for none.
        clock: seconds, monotonic (a stand-in in tests).
    """

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.clock = limit, clock
        self.started = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        """Seconds left (infinite without a limit, never below 0)."""
        return math.inf if self.limit <= 0 else max(self.limit - self.elapsed(), 0.0)

    def share(self, members_left: int) -> float:
        """The next member's ``training.time_limit``: an equal share of what is left, to 0.01 s and at least
        0.01 s (0 would mean no limit); 0 without a limit."""
        return 0.0 if self.limit <= 0 else max(round(self.left() / max(members_left, 1), 2), 0.01)

    def spent(self) -> bool:
        """Whether too little is left to start another member."""
        return self.left() < MIN_MEMBER_SECONDS


@dataclass
class Trained:
    """One trained and saved member, with its outputs on the validation (and test) rows."""

    index: int
    member: Member
    result: FitResult
    seconds: float
    time_limit: float
    epochs: int  # its training.epochs (cut to fit its time limit)
    valid_logits: Tensor  # (N_valid, C)
    test_logits: Tensor | None  # (N_test, C)


def train_best(plan: PresetPlan, train: TableLike, valid: TableLike | None, test: TableLike | None,
               out: str | Path, *, overwrite: bool = False, base_dir: str | Path | None = None,
               progress: bool = True, console: Console | None = None) -> EnsemblePredictor:
    """Trains ``plan.members`` on data prepared once, selects the ensemble on the validation rows, saves it.

    Args:
        plan: ``resolve_preset(config, "best", table)``.
        train / valid / test / base_dir: as for ``omnifuse.train``.
        out: the ensemble folder (members in ``out/members/<i>/``).
        overwrite: replace a model or ensemble already in ``out``.

    Returns:
        The loaded ensemble.

    Raises:
        DataError, ConfigError, BadRowError: as ``omnifuse.train``, before any member trains.
    """
    ctx = RunContext(Path(out), console or Console(), progress)
    _prepare_out(ctx.out, False, overwrite)  # refuses a folder holding a single model
    _clear(ctx.out, overwrite)
    for note in plan.notes:
        ctx.console.print(f"[bold]preset best[/bold]: {escape(note)}")
    seed_everything(plan.config.training.seed, verbose=False)
    data = prepare_data(plan.config, train, valid, test, ctx, base_dir=base_dir)
    budget = Budget(plan.config.training.time_limit)
    trained, note = train_members(plan.members, data, ctx, budget)
    if note:
        ctx.console.print(f"[yellow]{note}[/yellow]")
    summary, logits, targets, metrics = _select(trained, data, ctx.console)
    summary |= {"notes": plan.notes, "budget": {"time_limit": plan.config.training.time_limit,
                                                "seconds": budget.elapsed(), "planned": len(plan.members),
                                                "trained": len(trained), "note": note}}
    write_reports(ctx.out, trained[0].member.config, data.task, metrics, summary, logits, targets)
    write_ensemble(ctx.out, summary)  # the manifest last: an interrupted save leaves no loadable folder
    return load_ensemble(ctx.out)


def _clear(out: Path, overwrite: bool) -> None:
    """Removes what an interrupted ensemble left, and with ``overwrite`` a single model's files too."""
    remove_ensemble(out)
    if not overwrite:
        return
    for name in (*artifacts.REQUIRED, MANIFEST):
        (out / name).unlink(missing_ok=True)
    for name in (artifacts.ASSETS, "checkpoints"):
        shutil.rmtree(out / name, ignore_errors=True)


def train_members(members: list[Member], data: PreparedData, ctx: RunContext,
                  budget: Budget) -> tuple[list[Trained], str]:
    """Trains the members in order while the budget lasts; returns them and a note on what was left out."""
    trained: list[Trained] = []
    per_epoch: float | None = None  # seconds per epoch of the member before
    for index, member in enumerate(members):
        if trained and budget.spent():
            return trained, (f"The time limit was spent after {len(trained)} member(s); "
                             f"{len(members) - len(trained)} were not trained.")
        share = budget.share(len(members) - index)
        epochs = fitting_epochs(member.config.training.epochs, share, per_epoch)
        limit = f", training.time_limit {share:.1f} s, {epochs} epoch(s)" if share else ""
        where = f"{MEMBERS}/{index}: {escape(member.name)}"
        ctx.console.rule(f"[bold]{where}[/bold] ({index + 1} of {len(members)}{limit})")
        done = train_member(index, member, share, epochs, data, ctx)
        trained.append(done)
        if done.result.history:
            per_epoch = statistics.median(float(h["seconds"]) for h in done.result.history)
        score = "n/a" if done.result.best_score is None else f"{done.result.best_score:.4f}"
        monitor = data.task.monitor(member.config.training.monitor)[0]
        ctx.console.print(f"{where}: validation {monitor} {score}, "
                          f"{done.seconds:.1f} s ({escape(done.result.stop_reason)})")
        gc.collect()
    return trained, ""


def fitting_epochs(epochs: int, share: float, per_epoch: float | None) -> int:
    """A member's ``training.epochs``: at most ``epochs``; with a time limit (``share`` > 0) and a measured
    ``per_epoch`` (seconds), only as many as fit in ``share`` (at least 1)."""
    if share <= 0 or per_epoch is None or per_epoch <= 0:
        return epochs
    return max(1, min(epochs, math.floor(share / per_epoch)))


def train_member(index: int, member: Member, time_limit: float, epochs: int, data: PreparedData,
                 ctx: RunContext) -> Trained:
    """Trains one member into ``out/members/<index>/``: a model folder without report or checkpoints."""
    cfg = _replace_training(member.config, time_limit=time_limit, epochs=epochs)
    folder = member_dir(ctx.out, index)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    seed_everything(cfg.training.seed, verbose=False)
    console = ctx.console if ctx.progress else Console(quiet=True)
    model, result = fit_prepared(cfg, data, RunContext(folder, console, ctx.progress))
    task = finish_model(cfg, data, model, console)  # its gate and temperature, as train fits them
    device = next(model.parameters()).device
    temperature = getattr(task, "temperature", 1.0)
    # calibrated logits: the selection and the ensemble average calibrated probabilities
    outputs: dict[str, Tensor] = {
        split: run_model(model, collate_rows(data.examples[split]), device)[0] / temperature
        for split in ("valid", "test") if split in data.examples}
    artifacts.save_model(folder, cfg, data.preprocessors, task, model)
    _write_member_card(folder, cfg, data, outputs, result)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # a member is not resumed: only its weights
    seconds = time.monotonic() - started
    return Trained(index, member, result, seconds, time_limit, epochs, outputs["valid"], outputs.get("test"))


def _replace_training(config: Config, **values: Any) -> Config:
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **values))


def _write_member_card(folder: Path, config: Config, data: PreparedData, outputs: dict[str, Tensor],
                       result: FitResult) -> None:
    """A member's metrics.json (test split when there is one, as ``omnifuse train``) and README.md."""
    split = "test" if "test" in outputs else "valid"
    metrics = data.task.metrics(outputs[split], targets_of(data, split))
    payload = {"split": split, "stop_reason": result.stop_reason, "best_epoch": result.best_epoch + 1,
               **metrics}
    artifacts.write_json(folder / artifacts.METRICS, payload)
    write_model_card(folder, config, data.task, payload)


def targets_of(data: PreparedData, split: str) -> Tensor:
    """The encoded targets of a split, in row order."""
    targets = [e.target for e in data.examples[split]]
    assert all(t is not None for t in targets), "training splits carry targets"
    return torch.stack(targets)  # type: ignore[arg-type]


def selection_score(task: Task, targets: Tensor, space: str) -> Callable[[np.ndarray], Score]:
    """Scores an averaged (N, C) output: (the task's headline metric, higher is better; minus the loss)."""
    metric, mode = task.default_monitor()

    def score(mean: np.ndarray) -> Score:
        logits = from_average(space, torch.from_numpy(mean).float())
        value = task.metrics(logits, targets).get(metric)
        primary = -math.inf if value is None or math.isnan(value) else (value if mode == "max" else -value)
        return (primary, -float(task.loss(logits, targets)["loss"]))

    return score


def _select(trained: list[Trained], data: PreparedData,
            console: Console) -> tuple[dict[str, Any], Tensor, Tensor, dict[str, Any]]:
    """Caruana selection on the validation rows; returns (summary, logits, targets, metrics) of the report's
    split (test when there is one)."""
    task, space = data.task, space_of(data.task.name)
    metric = task.default_monitor()[0]
    valid_targets = targets_of(data, "valid")
    outputs = [to_average(space, t.valid_logits).double().numpy() for t in trained]
    selection = greedy_selection(outputs, selection_score(task, valid_targets, space), SELECTION_ROUNDS)
    chosen = [i for i, c in enumerate(selection.counts) if c > 0]
    weights = [selection.counts[i] for i in chosen]

    def ensemble_metrics(split: str, logits: list[Tensor]) -> tuple[Tensor, dict[str, Any]]:
        combined = combine(space, [logits[i] for i in chosen], weights)
        return combined, task.metrics(combined, targets_of(data, split))

    valid_logits, valid_metrics = ensemble_metrics("valid", [t.valid_logits for t in trained])
    test = [t.test_logits for t in trained if t.test_logits is not None]
    split = "test" if test else "valid"
    logits, metrics = ensemble_metrics("test", test) if test else (valid_logits, valid_metrics)
    summary = _summary(trained, data, selection, metric, valid_metrics.get(metric), metrics.get(metric),
                       split)
    members = ", ".join(f"{MEMBERS}/{i} x{w}" for i, w in zip(chosen, weights, strict=True))
    console.print(f"[bold green]Ensemble[/bold green] of {len(chosen)} member(s) ({members}): valid {metric} "
                  f"{_fmt(summary['valid_score'])}"
                  + (f", test {metric} {_fmt(summary['test_score'])}" if split == "test" else ""))
    return summary, logits, targets_of(data, split), metrics


def _summary(trained: list[Trained], data: PreparedData, selection: Selection, metric: str,
             valid_score: Any, test_score: Any, split: str) -> dict[str, Any]:
    """What ensemble.json holds (its members, their weights and scores, the selection)."""
    members = []
    for t in trained:
        test = data.task.metrics(t.test_logits, targets_of(data, "test")) if t.test_logits is not None else {}
        members.append({
            "path": f"{MEMBERS}/{t.index}", "name": t.member.name, "fusion": t.member.config.fusion.name,
            "seed": t.member.config.training.seed, "weight": selection.counts[t.index],
            "valid_score": data.task.metrics(t.valid_logits, targets_of(data, "valid")).get(metric),
            "test_score": test.get(metric), "seconds": t.seconds, "time_limit": t.time_limit,
            "epochs": t.epochs,
            "stop_reason": t.result.stop_reason, "best_epoch": t.result.best_epoch + 1,
        })
    return {"kind": "caruana", "task": data.task.name, "metric": metric,
            "mode": data.task.default_monitor()[1],
            "split": split, "valid_score": valid_score, "test_score": test_score if split == "test" else None,
            "members": members, "selection": {"rounds": selection.rounds, "picks": selection.picks}}


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"
