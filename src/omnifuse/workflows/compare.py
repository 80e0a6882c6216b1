"""`omnifuse compare`: unimodal baselines and fusion methods over several seeds, on data prepared once.

Every method trains on the same preprocessed rows (``api.prepare_data`` runs once): one unimodal baseline
per model input (the config with every other column ignored) and one model per selected fusion. Each
method is trained with ``seeds`` seeds (``training.seed + i``) into ``out/runs/<method>/seed<i>/`` and
scored on the test rows: headline metrics, parameters, training time, inference time per row and the
robustness scores of ``omnifuse.evaluation.robustness``. With ``baseline.enabled`` the classical baselines
(``omnifuse.baselines``) are fitted once on the same rows and added as rows of kind ``baseline``. The
outputs (``results.csv``, ``summary.csv``, ``comparison.png``, ``report.md``) are described in
``omnifuse.evaluation.comparison_report``.

Frozen encoders (``freeze_epochs: -1``) whose weights do not depend on the seed (pretrained ones) run once
over the training and validation rows (``omnifuse.training.frozen_features``; kept on disk across runs when
``training.feature_cache`` is on); every run then trains its fusion and head on those cached features, and
puts the real encoder back for the test evaluation.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from lightning_fabric.utilities.seed import seed_everything
from rich.console import Console
from rich.markup import escape

from omnifuse.api import fit_prepared, prepare_data
from omnifuse.build import build_encoders
from omnifuse.config.binding import fusion_options
from omnifuse.config.sections import TABULAR_INPUT, ColumnConfig, ComponentConfig, Config
from omnifuse.data.collate import Batch, Example, batches
from omnifuse.data.io import read_table
from omnifuse.data.quality import check_columns
from omnifuse.errors import DataError, UnknownNameError
from omnifuse.evaluation.comparison_report import (
    FUSION,
    OK,
    SKIPPED,
    TIMING_BATCH,
    UNIMODAL,
    ComparisonInfo,
    comparison_tables,
    plot_comparison,
    summarise,
    verdict,
    write_comparison_report,
)
from omnifuse.evaluation.robustness import metric_value, robustness_logits, robustness_scores
from omnifuse.fusion.base import FUSIONS
from omnifuse.model import MultimodalModel
from omnifuse.ood.scoring import has_scores, score_table
from omnifuse.tasks.base import Task
from omnifuse.training import frozen_features
from omnifuse.training.batched_forward import run_model
from omnifuse.training.frozen_features import FeatureCache
from omnifuse.training.loop import FitResult
from omnifuse.workflows.finish import finish_model
from omnifuse.workflows.prepare import PreparedData, RunContext, TableLike, prepare_examples

TEST_BATCH = TIMING_BATCH  # batch size of the test evaluation and of the inference timing
TIMING_REPEATS = 3  # the inference time is the median of this many passes over the test set
FALLBACK_FUSION = "concat"  # unimodal baselines use it when the config's own fusion needs more inputs
SHIFT_SPLIT = "shift"  # the --shift-test rows in PreparedData


@dataclass
class Method:
    """One entry of the comparison: a config to train, or the reason it cannot be built."""

    name: str  # "<input>-only" for a unimodal baseline, the fusion's name otherwise
    kind: str  # unimodal | fusion
    config: Config
    skip_reason: str = ""  # non-empty: not trained, reported as skipped


def select_fusions(fusions: str | Sequence[str]) -> list[str]:
    """The fusion names to compare: every registered one for "all", else the given ones (comma-separated).

    Raises:
        UnknownNameError: a name is not a registered fusion; the message lists the available ones.
    """
    from omnifuse import catalog  # noqa: F401  (fills the registries)

    available = FUSIONS.names()
    if isinstance(fusions, str):
        if fusions.strip() == "all":
            return available
        fusions = fusions.split(",")
    names = list(dict.fromkeys(n.strip() for n in fusions if n.strip()))
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        shown = ", ".join(repr(n) for n in unknown) or "(none given)"
        raise UnknownNameError(
            f"unknown fusion(s) {shown} in --fusions; available: {', '.join(available)}; "
            "pass 'all' or a comma-separated list of these"
        )
    return names


def restrict_to(cfg: Config, input_name: str) -> Config:
    """The config of a model that reads only ``input_name`` (the other columns' type set to ignore)."""

    def keep(name: str, column: ColumnConfig) -> bool:
        if input_name == TABULAR_INPUT:
            return column.type in ("numeric", "categorical")
        return name == input_name

    columns = {
        name: column if keep(name, column) else ColumnConfig(type="ignore")
        for name, column in cfg.columns.items()
    }
    return dataclasses.replace(cfg, columns=columns)


def with_fusion(cfg: Config, name: str) -> Config:
    """``cfg`` with fusion ``name``: the config's own options when it already uses it, defaults otherwise."""
    fusion = cfg.fusion if cfg.fusion.name == name else ComponentConfig(name=name)
    return dataclasses.replace(cfg, fusion=fusion)


def fusion_problem(cfg: Config, input_dims: dict[str, int]) -> str:
    """Why the fusion of ``cfg`` cannot be built for inputs of these sizes; "" when it can."""
    entry = FUSIONS.get(cfg.fusion.name)
    dims = {n: input_dims[n] for n in cfg.input_names()}
    try:
        entry.build(fusion_options(cfg.fusion), dims)
    except ValueError as exc:  # ConfigError is a ValueError too
        return str(exc).replace("\n", " ")
    return ""


def plan_methods(cfg: Config, data: PreparedData, fusions: list[str]) -> list[Method]:
    """The unimodal baselines and the fusion methods, each checked for whether its fusion can be built."""
    encoders = build_encoders(cfg, data.preprocessors, None)
    dims = {name: encoder.output_dim for name, encoder in encoders.items()}
    del encoders
    methods: list[Method] = []
    for name in cfg.input_names():
        single = restrict_to(cfg, name)
        if fusion_problem(single, dims):
            single = with_fusion(single, FALLBACK_FUSION)
        methods.append(Method(f"{name}-only", UNIMODAL, single, fusion_problem(single, dims)))
    for fusion in fusions:
        fused = with_fusion(cfg, fusion)
        methods.append(Method(fusion, FUSION, fused, fusion_problem(fused, dims)))
    return methods


def collate_rows(examples: list[Example], batch_size: int = TEST_BATCH) -> list[Batch]:
    """The test rows collated once, in order."""
    return list(batches(examples, batch_size))


def inference_ms_per_row(
    model: MultimodalModel, batches: list[Batch], repeats: int = TIMING_REPEATS
) -> float:
    """Median over ``repeats`` passes of the model's time per test row in ms (collation excluded)."""
    device = next(model.parameters()).device
    rows = sum(len(b.index) for b in batches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_model(model, batches, device)
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times) / max(rows, 1)


def headline_metrics(task_name: str) -> list[str]:
    """The metrics reported per method, headline first (a classifier's ECE of its calibrated
    probabilities last)."""
    classifier = ["accuracy", "macro_f1", "ece"]
    return {"regression": ["rmse"], "multilabel": ["macro_f1"]}.get(task_name, classifier)


def evaluate_run(
    model: MultimodalModel, data: PreparedData, batches: list[Batch], inputs: list[str], seed: int,
    task: Task | None = None,
) -> dict[str, Any]:
    """Test metrics, size, inference speed and robustness scores of one trained model; ``task``: its
    finished task (calibrated, ``finish_model``), ``data.task`` by default."""
    task = task or data.task
    metric = task.default_monitor()[0]
    logits = robustness_logits(model, batches, inputs, seed=seed)
    row: dict[str, Any] = {
        m: metric_value(task, logits.clean, logits.targets, m) for m in headline_metrics(task.name)
    }
    row["params"] = sum(p.numel() for p in model.parameters())
    row["ms_per_row"] = inference_ms_per_row(model, batches)
    return row | robustness_scores(logits, task, metric)


def build_feature_cache(cfg: Config, data: PreparedData, console: Console) -> FeatureCache:
    """Caches the features of each input whose encoder is frozen (``freeze_epochs: -1``) and seed-independent,
    reading and writing the disk cache when ``training.feature_cache`` is on (see
    ``omnifuse.training.frozen_features``).

    An encoder trained from scratch but frozen keeps its random initialisation, which differs per seed:
    such inputs are not cached (``frozen_fingerprint`` builds the encoder under two seeds and compares).
    """
    return frozen_features.build_feature_cache(cfg, data.preprocessors, data.examples, console,
                                               disk=cfg.training.feature_cache)


def _with_seed(cfg: Config, seed: int, **training: Any) -> Config:
    """``cfg`` with ``training.seed`` (and the other ``training`` values given) replaced."""
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, seed=seed, **training))


def train_run(
    method: Method, run: int, data: PreparedData, ctx: RunContext, cache: FeatureCache | None = None
) -> tuple[MultimodalModel, FitResult, float]:
    """Trains seed ``run`` of ``method`` into ``out/runs/<method>/seed<run>/``; returns model, result, s."""
    # The comparison's own cache (or cache=False) decides: fit_prepared does not build one per run.
    cfg = _with_seed(method.config, method.config.training.seed + run, feature_cache=False)
    seed = cfg.training.seed
    run_dir = ctx.out / "runs" / method.name / f"seed{run}"
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer_console = ctx.console if ctx.progress else Console(quiet=True)
    seed_everything(seed, verbose=False)
    started = time.perf_counter()
    run_ctx = RunContext(run_dir, trainer_console, ctx.progress)
    use = cache if cache is not None and set(cache.names) & set(cfg.input_names()) else None
    model, result = fit_prepared(cfg, data, run_ctx, cache=use)
    return model, result, time.perf_counter() - started


def shift_scores(model: MultimodalModel, cfg: Config, task: Task, shifted: list[Batch]) -> dict[str, Any]:
    """``shift_<metric>`` of a finished model (its OOD gate fitted, ``finish_model``) on the shifted test
    rows, a drifted column fused as missing (``ood.drifted_columns``), and ``shift_flagged_<input>``: the
    share of the input's shifted values flagged."""
    if not has_scores(model):
        logits, targets, _ = run_model(model, shifted, next(model.parameters()).device)
        rates: dict[str, Any] = {}
    else:
        assert model.gate is not None, "has_scores"
        scored = score_table(model, shifted, next(model.parameters()).device,
                             cfg.ood.drifted_columns == "drop")
        logits, targets, rates = scored.logits, scored.targets, scored.rates
    assert targets is not None, "the shifted rows carry targets"
    row = {f"shift_{m}": metric_value(task, logits, targets, m) for m in headline_metrics(task.name)}
    return row | {f"shift_flagged_{n}": r["flag_rate"] for n, r in rates.items()}


def run_method(
    method: Method,
    seeds: int,
    data: PreparedData,
    batches: list[Batch],
    ctx: RunContext,
    cache: FeatureCache | None = None,
    shifted: list[Batch] | None = None,
) -> list[dict[str, Any]]:
    """The results.csv rows of one method: one per seed, or one ``skipped`` row with the reason;
    ``shifted``: the shifted test rows (``--shift-test``), scored too (``shift_scores``)."""
    base = {"method": method.name, "kind": method.kind}
    if method.skip_reason:
        ctx.console.print(f"[yellow]Skipping {escape(method.name)}:[/yellow] {escape(method.skip_reason)}")
        return [{**base, "run": None, "seed": None, "status": SKIPPED, "reason": method.skip_reason}]
    inputs = sorted(data.examples["test"][0].inputs)
    metric = data.task.default_monitor()[0]
    rows = []
    for run in range(seeds):
        model, result, seconds = train_run(method, run, data, ctx, cache)
        seed = method.config.training.seed + run
        cfg = _with_seed(method.config, seed)
        task = finish_model(cfg, data, model, Console(quiet=True))  # OOD gate and temperature, as train
        scores = evaluate_run(model, data, batches, inputs, seed=0, task=task)
        if shifted is not None:
            scores |= shift_scores(model, cfg, task, shifted)
        rows.append(
            {
                **base,
                "run": run,
                "seed": seed,
                "status": OK,
                "reason": "",
                **scores,
                "train_s": seconds,
                "best_epoch": result.best_epoch + 1,
            }
        )
        ctx.console.print(
            f"{method.name} seed {seed}: {metric} {scores[metric]:.4f}, trained in {seconds:.1f} s "
            f"(best epoch {result.best_epoch + 1})"
        )
        del model
        gc.collect()
    return rows


def baseline_rows(cfg: Config, data: PreparedData, metrics: list[str],
                  console: Console) -> list[dict[str, Any]]:
    """The classical baselines (``baseline.enabled``) as results.csv rows, fitted once: seed-independent;
    with a ``shift`` split (``--shift-test``), each also scored there (``shift_<metric>``)."""
    if not cfg.baseline.enabled:
        return []
    from omnifuse.baselines.report import comparison_rows, summary_line
    from omnifuse.baselines.run import run_baselines

    baselines = run_baselines(cfg, data.task, data.preprocessors, data.tables, data.examples, "test")
    console.print(summary_line(baselines), markup=False, highlight=False)
    rows = comparison_rows(baselines, metrics)
    if SHIFT_SPLIT in data.examples:  # the same features and models, scored on the shifted rows
        shifted = run_baselines(cfg, data.task, data.preprocessors, data.tables, data.examples, SHIFT_SPLIT)
        by_name = {r["method"]: r for r in comparison_rows(shifted, metrics)}
        for row in rows:
            row.update({f"shift_{m}": by_name.get(row["method"], {}).get(m) for m in metrics})
    return rows


def _add_shift_split(cfg: Config, data: PreparedData, shift_test: TableLike, ctx: RunContext,
                     base_dir: str | Path | None) -> list[Batch]:
    """Reads and preprocesses the shifted table into ``data`` (split ``shift``); returns its batches."""
    table = read_table(shift_test, None if base_dir is None else Path(base_dir).resolve())
    check_columns(table.frame, cfg, table.source, need_label=True)
    data.tables[SHIFT_SPLIT] = table
    data.examples[SHIFT_SPLIT] = prepare_examples(cfg, table, data.preprocessors, data.task, ctx,
                                                  "shifted test")
    return collate_rows(data.examples[SHIFT_SPLIT])


def _order_columns(results: pd.DataFrame, metrics: list[str], inputs: list[str]) -> pd.DataFrame:
    first = [
        "method",
        "kind",
        "run",
        "seed",
        "status",
        "reason",
        *metrics,
        "params",
        "train_s",
        "ms_per_row",
        "best_epoch",
    ]
    first += [f"{kind}_{n}" for n in inputs for kind in ("missing", "corrupted")]
    for column in first:
        if column not in results:
            results[column] = None
    for column in ("run", "seed", "params", "best_epoch"):  # whole numbers, empty for skipped methods
        results[column] = results[column].astype("Int64")
    return results[first + [c for c in results.columns if c not in first]]


def write_outputs(out: Path, results: pd.DataFrame, info: ComparisonInfo, console: Console) -> pd.DataFrame:
    """Writes results.csv, summary.csv, comparison.png and report.md, prints the table; returns summary."""
    summary = summarise(results)
    results.to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    if (summary["status"] == OK).any():
        plot_comparison(summary, info, out / "comparison.png")
    report = write_comparison_report(out, summary, info)
    for table in comparison_tables(summary, info):
        console.print(table)
    console.print(verdict(summary, info.metric, info.mode).replace("**", ""))
    console.print(
        f"[green]Wrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'comparison.png'} "
        f"and {report}[/green]"
    )
    return summary


def run_compare(
    config: Config | str | Path,
    train: TableLike,
    valid: TableLike | None,
    test: TableLike,
    out: str | Path,
    *,
    fusions: str | Sequence[str] = "all",
    seeds: int = 3,
    progress: bool = True,
    console: Console | None = None,
    base_dir: str | Path | None = None,
    cache: bool = True,
    shift_test: TableLike | None = None,
) -> pd.DataFrame:
    """Compares unimodal baselines and fusion methods over ``seeds`` seeds on the test table.

    Args:
        config: a Config or the path of a YAML config; its fusion section is replaced per method.
        train / valid / test: tables; without ``valid`` a split of ``train`` is used (split.json in ``out``).
        out: the folder for results.csv, summary.csv, comparison.png, report.md and runs/.
        fusions: "all" (every registered fusion), a comma-separated string or a list of names.
        seeds: runs per method, with seeds ``training.seed + i``.
        base_dir: folder that relative file paths in the tables are resolved against.
        cache: compute the features of frozen pretrained encoders once for every run (``FeatureCache``),
            read from / kept in the disk cache when ``training.feature_cache`` is on; False: every run
            runs the frozen encoders at every step.
        shift_test: a labelled table drawn under a shift: every method (and classical baseline) is also
            scored there, its OOD gate fitted as ``omnifuse train`` fits it (``shift_<metric>`` and
            ``shift_flagged_<input>`` columns).
    Returns:
        The results.csv frame: one row per method and seed, one per skipped method.
    Raises:
        UnknownNameError: an unknown fusion name, before anything is read or trained.
        DataError: ``seeds`` below 1, or bad tables (see ``omnifuse.train``).
    """
    names = select_fusions(fusions)
    if seeds < 1:
        raise DataError(f"seeds must be at least 1, got {seeds}; pass --seeds 3 for mean ± std")
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    ctx = RunContext(Path(out), console or Console(), progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.training.seed, verbose=False)
    data = prepare_data(cfg, train, valid, test, ctx, base_dir=base_dir)
    shifted = None if shift_test is None else _add_shift_split(cfg, data, shift_test, ctx, base_dir)
    methods = plan_methods(cfg, data, names)
    features = build_feature_cache(cfg, data, ctx.console) if cache else None
    batches = collate_rows(data.examples["test"])
    inputs = sorted(data.examples["test"][0].inputs)
    metrics = headline_metrics(data.task.name)
    rows = baseline_rows(cfg, data, metrics, ctx.console)
    if shifted is not None:
        metrics = metrics + [f"shift_{m}" for m in metrics]
    for number, method in enumerate(methods, start=1):
        ctx.console.rule(f"[bold]{number}/{len(methods)}: {escape(method.name)}")
        rows += run_method(method, seeds, data, batches, ctx, features, shifted)
        # written after every method, so an interrupted comparison keeps what it finished
        _order_columns(pd.DataFrame(rows), metrics, inputs).to_csv(ctx.out / "results.csv", index=False)
    results = _order_columns(pd.DataFrame(rows), metrics, inputs)
    info = ComparisonInfo(
        task=data.task.name,
        metric=data.task.default_monitor()[0],
        mode=data.task.default_monitor()[1],
        metrics=metrics,
        inputs=inputs,
        seeds=[cfg.training.seed + i for i in range(seeds)],
        n_test=len(data.examples["test"]),
    )
    write_outputs(ctx.out, results, info, ctx.console)
    return results
