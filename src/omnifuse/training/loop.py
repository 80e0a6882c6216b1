"""The training loop on Lightning Fabric: epochs, accumulation, clipping, freezing, validation,
early stopping, per-epoch atomic checkpoints and resume."""

from __future__ import annotations

import contextlib
import csv
import math
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader

from omnifuse.augment.base import Pipeline, augment_batch
from omnifuse.config.sections import TrainingConfig
from omnifuse.data.bucketing import lengths_of, padding_ratio, variable_lengths
from omnifuse.data.collate import Batch
from omnifuse.data.dataset import ExampleDataset
from omnifuse.errors import CheckpointError
from omnifuse.model import MultimodalModel
from omnifuse.tasks.base import Task
from omnifuse.training import checkpoint, distributed
from omnifuse.training.batched_forward import run_model
from omnifuse.training.early_stopping import EarlyStopping
from omnifuse.training.ema import WeightEMA
from omnifuse.training.fabric import make_fabric
from omnifuse.training.interrupt import GracefulInterrupt, TrainingInterrupted
from omnifuse.training.modality_dropout import drop_modalities
from omnifuse.training.optim import make_optimizer, param_groups, warmup_cosine

LOG_FILE = "train_log.csv"
AUGMENT_SEED_OFFSET = 1_000_003  # the augmentation stream differs from the modality-dropout one


@dataclass
class EncoderSchedule:
    """Per-encoder learning-rate multipliers and freeze epochs ({input name: value}), and the head's
    multiplier (a pretrained language model's ``generation.lm_lr_mult``)."""

    lr_mults: dict[str, float] = field(default_factory=dict)
    freeze_epochs: dict[str, int] = field(default_factory=dict)
    head_lr_mult: float = 1.0


@dataclass
class FitResult:
    """What a finished run reports."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float | None
    stop_reason: str


class Trainer:
    """Fits a MultimodalModel with its Task on prepared DataLoaders.

    Args:
        model: the model (not yet set up on Fabric).
        task: loss and metrics.
        cfg: training options.
        schedule: per-encoder lr multipliers and freezing.
        checkpoint_dir: where last.safetensors / best.safetensors go.
        console: where messages and the progress bar are shown.
        show_progress: draw the rich progress bar.
        fabric: a launched Fabric (``make_fabric``); made from ``cfg`` when None. With several ranks
            every rank trains on its share of each global batch and only rank 0 writes files.
        epoch_callback: called with (epoch index, the epoch's log record) after every epoch; an exception
            it raises (e.g. a tuner pruning the trial) ends the run and propagates.
        augment: {input name: Pipeline} applied to training batches only (``omnifuse.augment``).
    """

    def __init__(
        self,
        model: MultimodalModel,
        task: Task,
        cfg: TrainingConfig,
        schedule: EncoderSchedule,
        checkpoint_dir: Path,
        console: Console,
        show_progress: bool = True,
        fabric: Fabric | None = None,
        epoch_callback: Callable[[int, dict[str, Any]], None] | None = None,
        augment: dict[str, Pipeline] | None = None,
    ) -> None:
        self.raw_model, self.task, self.cfg, self.schedule = model, task, cfg, schedule
        self.epoch_callback = epoch_callback
        self.augment = augment or {}
        self.augment_generator = torch.Generator().manual_seed(cfg.seed)
        self.ema: WeightEMA | None = None  # made in _setup when training.ema_decay > 0
        self.clock = TimeBudget(cfg.time_limit)
        # unfreezing restores exactly these (LoRA base weights, fixed feature encoders stay frozen)
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        self.checkpoint_dir, self.console, self.show_progress = checkpoint_dir, console, show_progress
        monitor, mode = task.monitor(cfg.monitor)
        self.early = EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience)
        self.fabric = fabric if fabric is not None else make_fabric(cfg)
        self.rank, self.world = self.fabric.global_rank, self.fabric.world_size
        self.writes = self.rank == 0  # only rank 0 writes checkpoints and logs
        self.sampler: distributed.GlobalBatchSampler | None = None
        self.padded_sizes: dict[str, torch.Tensor] = {}  # variable-length tensor -> (N,) sizes
        self.epoch_setters: list[Any] = []  # set_epoch of the sampler / streaming dataset
        self.loss_scale = 1.0  # of the current step (see GlobalBatchSampler.loss_scale)
        self.forward_syncs = False  # whether the DDP forward makes a collective (set in _setup)
        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.step = 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.interrupt = GracefulInterrupt()  # replaced by the active one during fit

    # -- setup ------------------------------------------------------------------------------
    def _setup(self, steps_per_epoch: int) -> None:
        groups = param_groups(self.raw_model, self.cfg.lr, self.cfg.weight_decay, self.schedule.lr_mults,
                              self.schedule.head_lr_mult)
        optimizer = make_optimizer(groups, self.cfg.fused_adamw)
        total = self.cfg.epochs * math.ceil(steps_per_epoch / self.cfg.accumulate)
        distributed.check_peers()  # DDP's set-up broadcasts rank 0's weights: a collective
        self.model, self.optimizer = self.fabric.setup(self.raw_model, optimizer)
        # DDP broadcasts rank 0's buffers at every forward (another collective) when there are any
        self.forward_syncs = self.world > 1 and any(True for _ in self.raw_model.buffers())
        self.scheduler = warmup_cosine(self.optimizer, total, self.cfg.warmup_ratio)
        if self.cfg.ema_decay > 0:
            self.ema = WeightEMA(self.raw_model, self.cfg.ema_decay)

    def _apply_freezing(self, epoch: int) -> None:
        for name, encoder in self.raw_model.encoders.items():
            until = self.schedule.freeze_epochs.get(name, 0)
            frozen = until == -1 or epoch < until
            for param_name, param in encoder.named_parameters():  # LoRA: base weights stay frozen
                param.requires_grad_(not frozen and f"encoders.{name}.{param_name}" in self.trainable)
            if frozen:
                encoder.eval()  # keep BatchNorm statistics and dropout of frozen encoders fixed

    # -- one epoch --------------------------------------------------------------------------
    def _train_epoch(self, loader: DataLoader[Any], epoch: int, progress: Progress | None) -> float:
        self.model.train()
        self._apply_freezing(epoch)
        # a stream that ended before its estimated length can leave an accumulation group unstepped:
        # its gradients must not leak into this epoch's first step
        self.optimizer.zero_grad(set_to_none=True)
        batches = self._batches(loader)
        task_id = (
            progress.add_task(f"epoch {epoch + 1}/{self.cfg.epochs}", total=batches, info="loss -")
            if progress
            else None
        )
        total, count = 0.0, 0
        for i, batch in enumerate(self._lockstep(loader, batches)):
            self.loss_scale = 1.0 if self.sampler is None else self.sampler.loss_scale(i)
            loss = self._train_step(batch, (i + 1) % self.cfg.accumulate != 0 and i + 1 < batches)
            total, count = total + loss * len(batch.index), count + len(batch.index)
            if (i + 1) % self.cfg.accumulate == 0 or i + 1 == batches:  # after an optimizer step
                self._check_interrupt(epoch)
                if self.world == 1 and self.clock.expired():
                    break  # the time limit: this partial epoch is still validated, then the run stops
            if progress is not None and task_id is not None:
                progress.update(task_id, advance=1, info=f"loss {total / count:.4f}")
        if progress is not None and task_id is not None:
            progress.remove_task(task_id)
        total, rows = distributed.sum_across_ranks([total, float(count)], self.fabric.device)
        return total / max(rows, 1.0)

    def _batches(self, loader: Sized) -> int:
        """Batches per epoch: the loader's (or sampler's), or fewer with ``training.steps_per_epoch``."""
        limit = self.cfg.steps_per_epoch
        return min(len(loader), limit) if limit > 0 else len(loader)

    def _lockstep(self, loader: DataLoader[Any], batches: int) -> Iterator[Batch]:
        """The loader's batches; with several ranks over a streaming dataset (whose shards may differ
        in length) it stops as soon as any rank runs out, so no rank waits forever in a gradient sync."""
        check = self.world > 1 and self.sampler is None
        for i, batch in enumerate(loader):
            if i == batches:  # training.steps_per_epoch reached
                break
            if check and not distributed.all_ranks(True, self.fabric.device):
                return
            yield batch
        if check:
            distributed.all_ranks(False, self.fabric.device)  # the others' last check

    def _train_step(self, batch: Batch, accumulate_now: bool) -> float:
        """One forward/backward (the loss times ``self.loss_scale``); returns the unscaled mean loss."""
        batch = batch.to(self.fabric.device)
        presence = drop_modalities(batch.presence, self.cfg.modality_dropout, self.generator,
                                   keep=getattr(self.raw_model, "prompt_inputs", ()))
        inputs = augment_batch(batch.inputs, self.augment, self.augment_generator)
        assert batch.target is not None, "training batches carry targets"
        with self.fabric.no_backward_sync(self.model, enabled=accumulate_now):
            if self.forward_syncs:
                distributed.check_peers()
            # a generation model reads the targets for teacher forcing (GenerationModel.reads_targets)
            reads = getattr(self.raw_model, "reads_targets", False)
            logits = self.model(inputs, presence, batch.target) if reads else self.model(inputs, presence)
            loss = self.task.loss(logits.float(), batch.target)["loss"]
            # the auxiliary heads' logits of this forward (MultimodalModel.forward; stand-ins have none)
            side: dict[str, torch.Tensor] = getattr(self.raw_model, "aux_logits", {})
            if side and self.cfg.aux_loss > 0:
                loss = loss + self.cfg.aux_loss * self._aux_loss(side, batch.presence, batch.target)
            if not accumulate_now:  # before the gradient all-reduce (a no-op with one process)
                distributed.check_peers()
            self.fabric.backward(loss * (self.loss_scale / self.cfg.accumulate))
        if not accumulate_now:
            if self.cfg.grad_clip > 0:
                self.fabric.clip_gradients(
                    self.model, self.optimizer, max_norm=self.cfg.grad_clip, error_if_nonfinite=False
                )
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.raw_model)
        return float(loss.detach())

    def _aux_loss(self, side: dict[str, torch.Tensor], presence: dict[str, torch.Tensor],
                  target: torch.Tensor) -> torch.Tensor:
        """Mean over inputs of each auxiliary head's task loss on the rows where its input is present
        (present in the table: modality dropout hides an input from the fusion, not from its own head)."""
        terms = []
        for name, logits in side.items():
            rows = presence[name]  # (B,)
            if rows.any():
                terms.append(self.task.loss(logits[rows].float(), target[rows])["loss"])
            else:  # keep the head in the graph (DDP expects every parameter to get a gradient)
                terms.append(logits.sum() * 0.0)
        return torch.stack(terms).mean()

    def evaluate(self, loader: DataLoader[Any]) -> dict[str, Any]:
        """Loss and metrics of the current weights on ``loader`` (with several ranks: each runs its share
        of the rows and the outputs are gathered, so every rank gets the single-process metrics)."""
        shard = distributed.shard_eval_loader(loader, self.rank, self.world)
        logits, targets, _ = distributed.gather_outputs(*run_model(self.raw_model, shard, self.fabric.device))
        assert targets is not None, "evaluation batches carry targets"
        metrics = self.task.metrics(logits, targets)
        metrics["loss"] = float(self.task.loss(logits, targets)["loss"])
        return metrics

    # -- the run ----------------------------------------------------------------------------
    def fit(self, train: DataLoader[Any], valid: DataLoader[Any], resume: bool = False) -> FitResult:
        """Trains until ``epochs`` or early stopping; restores the best weights at the end.

        The first Ctrl-C (SIGINT) stops after the current optimizer step and raises
        TrainingInterrupted; the checkpoint of the last finished epoch is kept (not overwritten), so
        ``--resume`` redoes the interrupted epoch from its start and ends exactly as an uninterrupted
        run. A second Ctrl-C aborts at once (KeyboardInterrupt).

        With several ranks an error on one stops them all within seconds (``distributed.stop_together``).

        Raises:
            TrainingInterrupted: on Ctrl-C. CheckpointError: disk full or too little free space.
            PeerFailedError: another DDP rank failed (its error is in the message).
        """
        with distributed.stop_together():
            return self._fit(train, valid, resume)

    def _fit(self, train: DataLoader[Any], valid: DataLoader[Any], resume: bool) -> FitResult:
        """``fit`` on this rank: shard the loader, set up, resume, check the disk, run the epochs."""
        examples = train.dataset.examples if isinstance(train.dataset, ExampleDataset) else []
        self.padded_sizes = variable_lengths(examples)
        lengths = lengths_of(self.padded_sizes) if self.cfg.group_by_length else None
        train, self.sampler = distributed.shard_train_loader(train, self.rank, self.world, self.cfg.seed,
                                                             lengths)
        self._report_padding()
        stream_epoch = getattr(train.dataset, "set_epoch", None)  # a streaming dataset shuffles per epoch
        sampler_epoch = None if self.sampler is None else self.sampler.set_epoch
        self.epoch_setters = [f for f in (stream_epoch, sampler_epoch) if callable(f)]
        loader: Any = self.fabric.setup_dataloaders(
            train, move_to_device=False, use_distributed_sampler=False
        )
        train = loader
        self._setup(self._batches(train))
        if resume:
            self._resume()
        if self.writes:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.ensure_free_space(
                # last.safetensors: weights + two Adam moments (3x); best.safetensors: weights (1x)
                self.checkpoint_dir,
                4 * _state_bytes(self.raw_model),
                "the checkpoints of this model",
            )
        note = "[yellow]Ctrl-C: stopping after the current step (press again to abort now)[/yellow]"
        self.clock = TimeBudget(self.cfg.time_limit)  # the budget counts from here, after the setup
        with GracefulInterrupt(lambda: self.console.print(note)) as self.interrupt:
            stop_reason = self._epochs(train, valid)
        return self._finish(stop_reason)

    def _finish(self, stop_reason: str) -> FitResult:
        """Restores the best weights (or, with ``training.restore_best: false``, keeps the final ones)."""
        if not self.cfg.restore_best:  # a fixed schedule (pretraining): the final weights are the result
            if self.ema is not None:  # the final averaged weights, the ones the last epoch validated
                self.raw_model.load_state_dict(self.ema.shadow, strict=False)
            last = self.history[-1] if self.history else {}
            self.console.print(f"[bold]Stopped:[/bold] {stop_reason}; kept the final weights "
                               f"(training.restore_best: false)")
            score = last.get(self.early.monitor)
            return FitResult(self.history, int(last.get("epoch", 1)) - 1,
                             None if score is None else float(score), stop_reason)
        self._restore_best()
        self.console.print(
            f"[bold]Stopped:[/bold] {stop_reason}; restored the best weights "
            f"(epoch {self.early.best_epoch + 1}, {self.early.monitor} = {_fmt(self.early.best)})"
        )
        return FitResult(self.history, self.early.best_epoch, self.early.best, stop_reason)

    def _epochs(self, train: DataLoader[Any], valid: DataLoader[Any]) -> str:
        """Runs the remaining epochs; returns why they ended."""
        if self.early.should_stop:  # resumed after the epoch that triggered early stopping
            return self.early.reason()
        with self._progress() as progress:
            overall = progress.add_task(
                "training",
                total=self.cfg.epochs,
                completed=self.start_epoch,
                info=f"best {self.early.monitor} {_fmt(self.early.best)}",
            )
            for epoch in range(self.start_epoch, self.cfg.epochs):
                self._check_interrupt(epoch)
                self.generator.manual_seed(self.cfg.seed + epoch)
                self.augment_generator.manual_seed(self.cfg.seed + epoch + AUGMENT_SEED_OFFSET)
                _reseed_loader(train, self.cfg.seed + epoch)
                for set_epoch in self.epoch_setters:
                    set_epoch(epoch)
                record = self._run_epoch(train, valid, epoch, progress)
                self.console.print(_epoch_line(record, self.early.monitor))
                progress.update(overall, advance=1, info=f"best {self.early.monitor} {_fmt(self.early.best)}")
                if self.epoch_callback is not None:
                    self.epoch_callback(epoch, record)
                if self.early.should_stop:
                    return self.early.reason()
                if self._out_of_time():
                    return (f"reached training.time_limit ({self.cfg.time_limit:g} s) after "
                            f"{self.clock.elapsed():.0f} s, in epoch {epoch + 1}")
        return f"reached the configured {self.cfg.epochs} epoch(s)"

    def _out_of_time(self) -> bool:
        """Whether ``training.time_limit`` is spent (rank 0 decides for every rank)."""
        expired = self.clock.expired()
        if self.world > 1:
            expired = bool(distributed.broadcast_from_zero(expired))
        return expired

    def _check_interrupt(self, epoch: int) -> None:
        """Raises TrainingInterrupted once Ctrl-C was pressed; ``epoch`` is the unfinished one (0-based)."""
        if not self.interrupt.requested:
            return
        kept = (
            f"the checkpoint of epoch {epoch} ({self.checkpoint_dir / checkpoint.LAST}) is kept"
            if epoch > 0
            else "no epoch finished yet, so a resumed run starts from the beginning"
        )
        raise TrainingInterrupted(
            f"Interrupted during epoch {epoch + 1} (after optimizer step {self.step}); {kept} and "
            f"epoch {epoch + 1} is redone from its start. Resume with `omnifuse train ... --resume` "
            "(the same arguments), or omnifuse.train(..., resume=True)"
        )

    def _run_epoch(
        self, train: DataLoader[Any], valid: DataLoader[Any], epoch: int, progress: Progress | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        train_loss = self._train_epoch(train, epoch, progress)
        with self._averaged():  # validate (and keep as the best) the averaged weights
            metrics = self._validate(valid, epoch)
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "valid_loss": metrics["loss"],
            **{k: v for k, v in metrics.items() if isinstance(v, float) and k != "loss"},
            "lr": self.scheduler.get_last_lr()[-1],
            "seconds": time.perf_counter() - started,
            **self._padding(),
        }
        self.history.append(record)
        self._write_log()
        self._save_checkpoint(epoch)
        return record

    def _padding(self, grouped: bool = True) -> dict[str, float]:
        """``padded_<input>_<tensor>``: padded / real positions in this epoch's training batches, for
        each tensor whose length varies (the cost of padding; see ``training.group_by_length``)."""
        if self.sampler is None or not self.padded_sizes:
            return {}
        used = self._batches(self.sampler)
        ratios = padding_ratio(self.padded_sizes, self.sampler.global_batches(grouped)[:used])
        return {"padded_" + key.replace(".", "_"): ratio for key, ratio in ratios.items()}

    def _report_padding(self) -> None:
        """One line on padding in the training batches, grouped by length against random batches."""
        grouped = self._padding()
        if not grouped or not self.writes:
            return
        ungrouped = self._padding(grouped=False)
        shown = ", ".join(f"{key} {value:.2f}x" for key, value in zip(self.padded_sizes, grouped.values(),
                                                                         strict=True))
        if self.sampler is not None and self.sampler.lengths is not None:
            rand = ", ".join(f"{value:.2f}x" for value in ungrouped.values())
            self.console.print(f"Padded / real positions per batch: {shown} (batches grouped by length; "
                               f"random batches: {rand})")
        else:
            self.console.print(f"Padded / real positions per batch: {shown} (training.group_by_length "
                               "is off)")

    def _validate(self, valid: DataLoader[Any], epoch: int) -> dict[str, Any]:
        """Validation metrics of the current weights; keeps them as the best when the monitor improved."""
        metrics = self.evaluate(valid)
        score = metrics.get(self.early.monitor)  # None where undefined, e.g. ROC-AUC with a class absent
        improved = self.early.update(float("nan") if score is None else float(score), epoch, metrics["loss"])
        if self.world > 1:  # every rank computed the same metrics; rank 0's decision binds them all
            self.early.load_state_dict(distributed.broadcast_from_zero(self.early.state_dict()))
            improved = bool(distributed.broadcast_from_zero(improved))
        if improved:
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.raw_model.state_dict().items()}
            if self.writes:
                checkpoint.save_weights(self.checkpoint_dir / checkpoint.BEST, self.best_state)
        return metrics

    def _averaged(self) -> Any:
        """A context in which the model holds the EMA weights (or its own when there is no EMA)."""
        return contextlib.nullcontext() if self.ema is None else self.ema.applied(self.raw_model)

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.show_progress,
            transient=True,
        )

    def _write_log(self) -> None:
        if not self.writes:
            return
        keys: list[str] = []
        for record in self.history:
            keys += [k for k in record if k not in keys]
        path = self.checkpoint_dir.parent / LOG_FILE
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)

    # -- checkpoints ------------------------------------------------------------------------
    def _save_checkpoint(self, epoch: int) -> None:
        if not self.writes:
            return
        state = {
            "epoch": epoch,
            "step": self.step,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early": self.early.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "task": self.task.training_state(),  # e.g. the contrastive queues
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        checkpoint.save_checkpoint(self.checkpoint_dir, state)

    def _resume(self) -> None:
        state = checkpoint.load_checkpoint(self.checkpoint_dir)
        if state is None:
            self.console.print("[yellow]--resume: no checkpoint found; starting from scratch[/yellow]")
            return
        self.raw_model.load_state_dict(state["model"])
        self._load_optimizer(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.early.load_state_dict(state["early"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.task.load_training_state(state.get("task") or {})
        self.history = list(state["history"])
        self.start_epoch, self.step = int(state["epoch"]) + 1, int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        best = self.checkpoint_dir / checkpoint.BEST
        if best.exists():
            self.best_state = checkpoint.load_weights(best)
        self.console.print(f"Resumed from epoch {self.start_epoch} (step {self.step}).")

    def _load_optimizer(self, state: dict[str, Any]) -> None:
        """Restores the optimizer's state; one whose parameter groups differ is a clear error.

        Raises:
            CheckpointError: the checkpoint's optimizer has other parameter groups (e.g. written before
                ``training.fused_adamw`` split them, or by another config).
        """
        try:
            self.optimizer.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(
                f"the checkpoint in {self.checkpoint_dir} holds an optimizer with other parameter groups "
                f"than this run's ({exc}); it was written by another config or an older omnifuse. Resume "
                "with the config it was trained with (an older omnifuse's checkpoint: add "
                "training.fused_adamw: false), or train again without --resume"
            ) from None

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.raw_model.load_state_dict(self.best_state)


class TimeBudget:
    """Seconds since the run started against ``training.time_limit`` (0: no limit)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self) -> bool:
        return self.limit > 0 and self.elapsed() >= self.limit


def _state_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's state dict (parameters and buffers)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _reseed_loader(loader: Any, seed: int) -> None:
    generator = getattr(loader, "generator", None)
    if generator is None:
        generator = getattr(getattr(loader, "_dataloader", None), "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(seed)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _epoch_line(record: dict[str, Any], monitor: str) -> str:
    watched = "" if monitor == "loss" else f"{monitor} {_fmt(record.get(monitor))}  "  # loss: shown already
    return (
        f"epoch {record['epoch']:>3}  train_loss {record['train_loss']:.4f}  "
        f"valid_loss {record['valid_loss']:.4f}  {watched}({record['seconds']:.1f}s)"
    )
