"""Orchestration of train / evaluate: reads tables, fits preprocessors, runs the loop, writes artifacts."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_fabric import Fabric
from lightning_fabric.utilities.seed import seed_everything
from rich.console import Console
from torch.utils.data import DataLoader

from omnifuse.artifacts import folder as artifacts
from omnifuse.artifacts.model_card import write_model_card
from omnifuse.augment.base import Pipeline
from omnifuse.augment.pipelines import build_pipelines
from omnifuse.build import build_model
from omnifuse.config.sections import Config
from omnifuse.contrastive.init_from import init_encoder
from omnifuse.data.collate import Example, batches, collate
from omnifuse.data.io import read_table
from omnifuse.data.quality import BAD_ROW_PARTS, BAD_ROWS_FILE, check_columns
from omnifuse.errors import CheckpointError, DataError
from omnifuse.evaluation.ablation import ablation_section, modality_ablation, plot_ablation
from omnifuse.evaluation.calibration import calibration_section, calibration_summary
from omnifuse.evaluation.report import write_report
from omnifuse.evaluation.shift import SHIFT_FOLDER, shift_section, shift_summary
from omnifuse.inference.loading import load
from omnifuse.inference.predictor import Predictor
from omnifuse.model import MultimodalModel
from omnifuse.ood.drift import flag_section
from omnifuse.ood.scoring import has_scores, score_table
from omnifuse.readout.module import readout_section, readout_summary
from omnifuse.tasks.base import Task
from omnifuse.tasks.classification import ClassificationTask
from omnifuse.training import checkpoint
from omnifuse.training.batched_forward import run_model
from omnifuse.training.distributed import stop_together, zero_first
from omnifuse.training.fabric import make_fabric, needs_unused_parameters
from omnifuse.training.feature_cache import precomputed_encoders
from omnifuse.training.frozen_features import FeatureCache, training_cache
from omnifuse.training.loop import EncoderSchedule, FitResult, Trainer
from omnifuse.training.standardize import standardize_for_run
from omnifuse.workflows.finish import finish_model
from omnifuse.workflows.prepare import (
    PreparedData,
    RunContext,
    TableLike,
    make_loader,
    prepare_examples,
    prepare_tables,
)

if TYPE_CHECKING:
    import pandas as pd


def train(
    config: Config | str | Path,
    train: TableLike,
    valid: TableLike | None = None,
    test: TableLike | None = None,
    out: str | Path = "omnifuse_model",
    *,
    resume: bool = False,
    overwrite: bool = False,
    seed: int | None = None,
    base_dir: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> Predictor:
    """Trains a model on a table and saves a model folder to ``out``; returns its Predictor.

    Args:
        config: a Config or the path of a YAML config.
        train / valid / test: tables (CSV/TSV/Parquet/JSONL path or DataFrame). Without ``valid``
            a stratified split of ``train`` (``data.valid_fraction``) is used and saved to split.json.
        out: the model folder (also holds checkpoints/, train_log.csv, bad_rows.csv).
        resume: continue from the last checkpoint (out/checkpoints/last.safetensors).
        overwrite: allow ``out`` to hold an earlier model.
        seed: overrides ``training.seed``.
        base_dir: folder that relative file paths in the tables are resolved against (default: each
            table file's own folder; the current folder for DataFrames).
    Raises:
        ConfigError, DataError, BadRowError: bad configuration or input, before training starts.
    """
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    if seed is not None:  # a copy: the caller's Config stays as it was
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, seed=seed))
    fabric = make_fabric(cfg.training, find_unused_parameters=needs_unused_parameters(cfg))
    ctx = RunContext(Path(out), console or Console(), progress)
    if fabric.global_rank > 0:  # DDP: only rank 0 talks and writes; the others wait at barriers
        ctx = RunContext(ctx.out, Console(quiet=True), False, writes=False)
    with stop_together():  # DDP: an error on one rank stops every rank at once, with that error
        _train_and_save(cfg, train, valid, test, ctx, fabric, resume, overwrite, base_dir)
    return load(ctx.out)


def _train_and_save(cfg: Config, train: TableLike, valid: TableLike | None, test: TableLike | None,
                    ctx: RunContext, fabric: Fabric, resume: bool, overwrite: bool,
                    base_dir: str | Path | None) -> None:
    """The steps of ``train`` after Fabric is launched: check the folder, prepare, fit, save."""
    zero_first(lambda: _prepare_out(ctx.out, resume, overwrite))
    seed_everything(cfg.training.seed, verbose=False)
    data = prepare_data(cfg, train, valid, test, ctx, resume=resume, base_dir=base_dir)
    model, result = fit_prepared(cfg, data, ctx, resume=resume, fabric=fabric)

    def save() -> None:
        task = finish_model(cfg, data, model, ctx.console)
        predictor = Predictor(model, cfg, data.preprocessors, task, ctx.out)
        artifacts.save_model(ctx.out, cfg, data.preprocessors, task, model)
        _final_reports(predictor, data, result, ctx)

    zero_first(save)


def _merge_streamed_bad_rows(data: PreparedData, ctx: RunContext, report: bool = True) -> None:
    """Rank 0 merges the bad rows streaming found (one file per batch, written by whichever rank and
    loader worker read it) into bad_rows.csv, and says how many there were when ``report``."""
    if data.merge_bad_rows is None or not ctx.writes:
        return
    count, path = data.merge_bad_rows()
    if count and report:
        ctx.console.print(f"[yellow]Skipped {count} bad row(s) of the streamed table; see {path}[/yellow]")


def prepare_data(cfg: Config, train: TableLike, valid: TableLike | None, test: TableLike | None,
                 ctx: RunContext, *, resume: bool = False,
                 base_dir: str | Path | None = None) -> PreparedData:
    """Reads and splits the tables, fits the task and the preprocessors on the training rows, and
    preprocesses every split once (bad rows handled by ``data.on_bad_row``).

    With ``data.streaming`` the training table is read in batches instead (see
    omnifuse.workflows.streamed_prepare)."""
    if cfg.data.streaming:
        from omnifuse.workflows.streamed_prepare import prepare_streaming

        return prepare_streaming(cfg, train, valid, test, ctx, base_dir=base_dir)
    return prepare_tables(cfg, train, valid, test, ctx, resume=resume, base_dir=base_dir)


def fit_prepared(cfg: Config, data: PreparedData, ctx: RunContext, *, resume: bool = False,
                 fabric: Fabric | None = None,
                 epoch_callback: Callable[[int, dict[str, Any]], None] | None = None,
                 cache: FeatureCache | None = None,
                 ) -> tuple[MultimodalModel, FitResult]:
    """Builds the model of ``cfg`` (its inputs may be a subset of what ``data`` holds) and trains it;
    checkpoints and the training log go to ``ctx.out``. ``fabric``: a launched one (``make_fabric``),
    made from ``cfg.training`` when None. ``epoch_callback``: see ``make_trainer``. ``cache``: cached
    features built by the caller (``omnifuse compare`` builds one for all its runs); None builds the run's
    own when ``training.feature_cache`` is on."""
    model = build_model(cfg, {n: data.preprocessors[n] for n in cfg.input_names()}, data.task,
                        init_weights=init_encoder)
    if cfg.generation is not None and cfg.generation.init_from and not resume:
        from omnifuse.generation.stages import start_from

        copied, total = start_from(model, Path(cfg.generation.init_from))
        if ctx.writes:
            ctx.console.print(f"Started from {cfg.generation.init_from}: {copied} of {total} tensors")
    # Frozen pretrained encoders run once (or are read from the disk cache), not at every step.
    cached = cache
    if cached is None and data.train_stream is None:
        cached = training_cache(cfg, data.preprocessors, data.examples, ctx.console)
    examples = data.examples if cached is None else cached.examples
    cached_names = [] if cached is None else list(cached.names)
    standardize_for_run(cfg, model, examples.get("train"), cached_names, ctx.console)
    with precomputed_encoders(model, cached_names):
        trainer = make_trainer(cfg, model, data.task, ctx, fabric, epoch_callback, cached=cached_names)
        train_loader = (make_loader(cfg, examples["train"], shuffle=True) if data.train_stream is None
                        else DataLoader(data.train_stream, batch_size=cfg.training.batch_size,
                                        collate_fn=collate, num_workers=cfg.training.num_workers))
        try:
            result = trainer.fit(train_loader, make_loader(cfg, examples["valid"]), resume=resume)
        except BaseException:
            with contextlib.suppress(OSError):  # a stopped run lists what it found too; its error counts
                _merge_streamed_bad_rows(data, ctx, report=False)
            raise
    _merge_streamed_bad_rows(data, ctx)
    return model, result


def _augmentations(cfg: Config, cached: Sequence[str], ctx: RunContext) -> dict[str, Pipeline]:
    """The training-time augmentation of each column; columns whose features are cached get none."""
    pipelines = build_pipelines(cfg)
    for name in sorted(set(pipelines) & set(cached)):
        if isinstance(cfg.columns[name].augment, dict) and ctx.writes:
            ctx.console.print(f"[yellow]columns.{name}.augment is ignored: the frozen encoder's features "
                              "are computed once and cached (training.feature_cache: false augments "
                              "them)[/yellow]")
        del pipelines[name]
    return pipelines


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Checks ``out`` before any work: not an earlier model (unless resume/overwrite), a folder,
    writable, and with at least ``checkpoint.MIN_FREE_BYTES`` free (the Trainer checks again with
    the model's real size before its first checkpoint).

    Raises:
        DataError: ``out`` holds a model or is a file. CheckpointError: not writable or too full.
    """
    if (out / artifacts.WEIGHTS).exists() and not (resume or overwrite):
        raise DataError(
            f"output folder {str(out)!r} already holds a trained model; choose another --out, "
            "pass --overwrite to replace it, or --resume to continue its run"
        )
    if out.exists() and not out.is_dir():
        raise DataError(f"output path {str(out)!r} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create output folder {str(out)!r} ({exc.strerror or exc}); "
            "check the parent folder's permissions or choose another --out"
        ) from exc
    checkpoint.check_writable(out)
    checkpoint.ensure_free_space(out, checkpoint.MIN_FREE_BYTES, "training checkpoints")
    # preparing lists the bad rows again (resume too); a resumed stream keeps its first epoch's parts
    (out / BAD_ROWS_FILE).unlink(missing_ok=True)
    if not resume:
        shutil.rmtree(out / BAD_ROW_PARTS, ignore_errors=True)


def make_trainer(cfg: Config, model: Any, task: Task, ctx: RunContext,
                 fabric: Fabric | None = None,
                 epoch_callback: Callable[[int, dict[str, Any]], None] | None = None,
                 cached: Sequence[str] = ()) -> Trainer:
    """The Trainer for ``cfg``: per-encoder schedule, checkpoints under ``ctx.out/checkpoints``;
    ``epoch_callback(epoch, record)`` runs after every epoch (see Trainer); the columns' training-time
    augmentation applies to every input but the ``cached`` ones (their features are precomputed)."""
    names = cfg.input_names()
    schedule = EncoderSchedule(
        lr_mults={n: cfg.encoder_of(n).lr_mult for n in names},
        freeze_epochs={n: cfg.encoder_of(n).freeze_epochs for n in names},
        head_lr_mult=_head_lr_mult(cfg),
    )
    return Trainer(model, task, cfg.training, schedule, ctx.out / "checkpoints", ctx.console, ctx.progress,
                   fabric=fabric, epoch_callback=epoch_callback, augment=_augmentations(cfg, cached, ctx))


def _head_lr_mult(cfg: Config) -> float:
    """``generation.lm_lr_mult`` for a pretrained LM (tiny_decoder and the other heads: 1); with LoRA it is
    the adapters' rate."""
    from omnifuse.generation.names import TINY_DECODER

    section = cfg.generation
    if cfg.label.task != "generation" or section is None or section.lm == TINY_DECODER:
        return 1.0
    return section.lm_lr_mult


def _final_reports(predictor: Predictor, data: PreparedData, result: FitResult, ctx: RunContext) -> None:
    split = "test" if "test" in data.examples else "valid"
    metrics = _evaluate_examples(
        predictor, data.examples[split], ctx.out, f"Training report ({split} split)", result.history,
        _baselines(predictor.config, data, split, ctx),
        data.tables[split].frame if split in data.tables else None,
    )
    payload = {
        "split": split,
        "stop_reason": result.stop_reason,
        "best_epoch": result.best_epoch + 1,
        **metrics,
    }
    artifacts.write_json(ctx.out / artifacts.METRICS, payload)
    write_model_card(ctx.out, predictor.config, predictor.task, payload)


def _baselines(cfg: Config, data: PreparedData, split: str, ctx: RunContext) -> dict[str, Any] | None:
    """The baselines of a training run (``baseline.enabled``), fitted on its rows and scored on ``split``."""
    if not cfg.baseline.enabled or data.task.name in ("contrastive", "generation"):
        return None
    from omnifuse.baselines.report import summary_line
    from omnifuse.baselines.run import run_baselines

    baselines = run_baselines(cfg, data.task, data.preprocessors, data.tables, data.examples, split)
    ctx.console.print(summary_line(baselines), markup=False, highlight=False)
    return baselines


def _evaluate_examples(
    predictor: Predictor,
    examples: list[Example],
    out: Path,
    title: str,
    history: list[dict[str, Any]] | None = None,
    baselines: dict[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
    shifted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metrics (and report) of ``examples``; ``frame``: their table (a generation model's written
    texts are scored against its label texts as they are, not as its vocabulary spells them);
    ``shifted``: a shifted table's metrics (``shift_summary``), reported beside these."""
    if predictor.task.name == "contrastive":
        from omnifuse.contrastive.evaluate import evaluate_contrastive

        return evaluate_contrastive(predictor, examples, out, title, history)
    if predictor.task.name == "generation":
        from omnifuse.generation.evaluate import evaluate_generation

        column = predictor.config.label.column
        # rows keep their table's row numbers (a carved validation split too): texts by row number
        texts = None if frame is None or column not in frame else frame[column].to_dict()
        return evaluate_generation(predictor, examples, out, title, history, texts)
    collated = list(batches(examples, 64))
    sections: dict[str, str] = {}
    scored = None
    if has_scores(predictor.model):
        drop = predictor.config.ood.drifted_columns == "drop"
        scored = score_table(predictor.model, collated, predictor.device, drop)
        logits, targets = scored.logits, scored.targets
        sections["Inputs unlike the training data"] = flag_section(
            scored.rates, predictor.model.gate.drop, scored.dropped)  # type: ignore[union-attr]
    else:
        logits, targets, _ = run_model(predictor.model, collated, predictor.device)
    assert targets is not None, "evaluation examples carry targets"
    task = predictor.task
    metrics = task.metrics(logits, targets)
    if scored is not None:
        metrics["ood"], metrics["ood_dropped"] = scored.rates, scored.dropped
    if isinstance(task, ClassificationTask) and task.temperature != 1.0 and len(targets) > 0:
        summary = calibration_summary(logits.float().numpy(), targets.long().numpy(), task.temperature)
        metrics["calibration"] = summary
        sections["Calibration"] = calibration_section(summary)
    readout = readout_summary(predictor.model)
    if readout is not None:
        metrics["readout"], sections["Linear read-out"] = readout, readout_section(readout)
    if len(predictor.config.input_names()) > 1 and isinstance(predictor.model, MultimodalModel):  # one model
        ablation = modality_ablation(predictor.model, task, collated, predictor.device)
        plot_ablation(ablation, out / "plots" / "ablation.png")
        sections["Modality ablation"] = ablation_section(ablation, "plots/ablation.png")
        metrics["modality_ablation"] = ablation
    top = None
    if baselines is not None:
        from omnifuse.baselines.report import report_parts

        top, sections["Baselines"] = report_parts(metrics, baselines, out)
        metrics["baselines"] = baselines
    if shifted is not None:
        sections["Shifted test table"] = shift_section(metrics, shifted, task.default_monitor()[0])
        metrics["shift"] = shifted
    write_report(out, metrics, task, title=title, history=history,
                 probabilities=task.probabilities(logits).numpy(), targets=targets.numpy(),
                 extra_sections=sections, top_line=top)
    return metrics


def evaluate(
    model: str | Path | Predictor,
    data: TableLike,
    out: str | Path | None = None,
    *,
    base_dir: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    label: str | None = None,
    shift_test: TableLike | None = None,
) -> dict[str, Any]:
    """Evaluates a model on a labelled table; writes metrics.json, report.md and plots/ to ``out``.

    ``out`` defaults to ``<model folder>/evaluation``. Bad rows follow the model's ``data.on_bad_row``.
    ``label`` (contrastive models only): a class column of the table, for the class-level retrieval
    metrics (precision@10, map) of a model pretrained without labels. ``shift_test``: a second labelled
    table drawn under a shift (another speaker, camera, source), evaluated into ``out/shift/`` and
    reported beside this one (``metrics["shift"]``: its scores, each input removed, its OOD flag rates).
    """
    predictor = model if isinstance(model, Predictor) else load(model)
    base = predictor.folder or Path.cwd()
    ctx = RunContext(Path(out) if out is not None else base / "evaluation", console or Console(), progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    table = read_table(data, None if base_dir is None else Path(base_dir).resolve())
    if label is not None:
        predictor = _with_label_column(predictor, label, list(table.frame.columns))
    check_columns(table.frame, predictor.config, table.source, need_label=True)
    examples = prepare_examples(predictor.config, table, predictor.preprocessors, predictor.task, ctx,
                                "evaluation")
    baselines = None
    if predictor.config.baseline.enabled:  # a model folder holds no training rows: training's baselines
        from omnifuse.baselines.reuse import training_baselines

        baselines = training_baselines(predictor.folder, table.source)
    shifted = None
    if shift_test is not None:
        shifted = _evaluate_shift(predictor, shift_test, ctx, base_dir)
    metrics = _evaluate_examples(predictor, examples, ctx.out, f"Evaluation on {table.source}",
                                 baselines=baselines, frame=table.frame, shifted=shifted)
    artifacts.write_json(ctx.out / artifacts.METRICS, metrics)
    return metrics


def _evaluate_shift(predictor: Predictor, data: TableLike, ctx: RunContext,
                    base_dir: str | Path | None) -> dict[str, Any]:
    """Evaluates the shifted table into ``<out>/shift/``; returns its ``shift_summary``."""
    if predictor.task.name in ("contrastive", "generation"):
        raise DataError(f"--shift-test is for classifiers and regressors; this is a {predictor.task.name} "
                        "model: evaluate the shifted table on its own")
    table = read_table(data, None if base_dir is None else Path(base_dir).resolve())
    check_columns(table.frame, predictor.config, table.source, need_label=True)
    examples = prepare_examples(predictor.config, table, predictor.preprocessors, predictor.task, ctx,
                                "shifted evaluation")
    folder = ctx.out / SHIFT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    metrics = _evaluate_examples(predictor, examples, folder, f"Evaluation on the shifted {table.source}")
    artifacts.write_json(folder / artifacts.METRICS, metrics)
    return shift_summary(metrics, str(table.source))


def _with_label_column(predictor: Predictor, label: str, columns: list[str]) -> Predictor:
    """A shallow copy of a contrastive ``predictor`` that reads class labels from column ``label``."""
    import copy

    if predictor.task.name != "contrastive":
        if label == predictor.config.label.column:
            return predictor
        raise DataError(
            f"--label {label!r}: this {predictor.task.name} model predicts "
            f"{predictor.config.label.column!r}; drop --label (it is for contrastive models)"
        )
    if label not in columns:
        raise DataError(f"--label {label!r} is not a column of the table (columns: {', '.join(columns)}); "
                        "name the column that holds the class of each row")
    labelled = copy.copy(predictor)
    labelled.config = dataclasses.replace(
        predictor.config, label=dataclasses.replace(predictor.config.label, column=label)
    )
    labelled.task = copy.copy(predictor.task)
    labelled.task.has_labels = True  # type: ignore[attr-defined]
    return labelled
