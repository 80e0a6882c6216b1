"""Fits every baseline of a config on prepared rows and scores it: the ``baselines`` entry of metrics.json.

Per model input: its classical features with a linear model (logistic regression or ridge), gradient
boosting as well for the tabular input, and the frozen embeddings of a pretrained encoder with a linear
model; then every block concatenated (early fusion) with a linear model, "fused (linear)". Fitted on at
most ``baseline.max_rows`` training rows (a sample seeded with ``training.seed``), regularisation chosen
on the validation rows, scored on ``split`` with the task's own metrics. BLAS and OpenMP run on one thread
(``threadpoolctl``): these fits are small, and on a busy machine more threads only wait on each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from omnifuse.baselines.blocks import TRAIN, Block, SplitRows, build_blocks
from omnifuse.baselines.models import Fitted, fit_boosting, fit_linear
from omnifuse.config.sections import Config
from omnifuse.contrastive.init_from import init_encoder
from omnifuse.data.collate import Example
from omnifuse.data.io import Table
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.evaluation.report import scalar_metrics
from omnifuse.tasks.base import Task

FUSED = "fused (linear)"
NO_CONTRASTIVE = "no baseline for contrastive pretraining (there is no label to predict)"
STREAMED = ("not fitted: the training table was streamed (data.streaming), so its rows are not held in "
            "memory; run `omnifuse baseline` on a sample of it")
VALID_NOTE = ("scored on the validation rows, which also chose each baseline's regularisation (slightly "
              "optimistic); give a test table for an unbiased floor")


def split_rows(table: Table, examples: list[Example]) -> SplitRows:
    """The raw cells of the rows behind ``examples`` (matched by row id), in the examples' order."""
    cells: list[dict[str, Any]] = table.frame.to_dict(orient="records")  # type: ignore[assignment]
    records = dict(zip((int(i) for i in table.frame.index), cells, strict=True))
    return SplitRows(list(examples), [records[ex.index] for ex in examples], table.base_dir)


def sample_rows(rows: SplitRows, max_rows: int, seed: int) -> SplitRows:
    """At most ``max_rows`` of the rows, drawn without replacement with ``seed``, in their original order."""
    if len(rows.examples) <= max_rows:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows.examples), max_rows, replace=False))
    return replace(rows, examples=[rows.examples[i] for i in keep], records=[rows.records[i] for i in keep])


def encoded_targets(examples: list[Example]) -> np.ndarray:
    """The examples' encoded targets stacked: (N,) class indices, (N, C) multi-hot or (N, 1) values."""
    return np.stack([ex.target.numpy() for ex in examples if ex.target is not None])


def model_word(task: Task) -> str:
    """How the linear model of ``task`` is named in the results."""
    return "ridge" if task.name == "regression" else "logistic"


def fuse(blocks: list[Block]) -> Block:
    """Early fusion: the blocks' matrices side by side (sparse when any block is)."""
    splits = blocks[0].matrices
    sparse = any(sp.issparse(b.matrices[TRAIN]) for b in blocks)
    stack: Callable[[list[Any]], Any] = (lambda ms: sp.hstack(ms, format="csr")) if sparse else np.hstack
    matrices = {s: stack([b.matrices[s] for b in blocks]) for s in splits}
    inputs = sorted({name for b in blocks for name in b.inputs})
    return Block(inputs, " + ".join(b.features for b in blocks), matrices, sum(b.seconds for b in blocks))


def result_row(task: Task, name: str, block: Block, model: str, fitted: Fitted, split: str,
               targets: dict[str, np.ndarray]) -> dict[str, Any]:
    """One entry of the results: what was fitted, the chosen setting, the seconds and the scalar metrics."""
    metrics = task.metrics(torch.from_numpy(fitted.logits[split]), torch.from_numpy(targets[split]))
    return {"name": name, "inputs": block.inputs, "features": block.features, "model": model,
            "choice": fitted.choice, "features_s": round(block.seconds, 3), "fit_s": round(fitted.seconds, 3),
            **dict(scalar_metrics(metrics, task.name))}


def boost(task: Task, block: Block, targets: dict[str, np.ndarray], seed: int) -> Fitted:
    """Gradient boosting on a block that has boosting features (the tabular input)."""
    assert block.categorical is not None, "only tabular blocks are boosted"
    return fit_boosting(task, block.boosting, targets, block.categorical, seed)


def fit_all(task: Task, blocks: list[Block], targets: dict[str, np.ndarray], split: str, seed: int,
            notes: list[str]) -> list[dict[str, Any]]:
    """Every model on every block, then the early-fusion model; a model that cannot be fitted is a note."""
    plans: list[tuple[str, Block, str, Callable[[Block], Fitted]]] = []
    for block in blocks:
        label = f"{block.inputs[0]} ({block.features}, {model_word(task)})"
        plans.append((label, block, model_word(task), lambda b: fit_linear(task, b.matrices, targets)))
        if block.categorical is not None and task.name != "multilabel":
            boosting = "gradient boosting"
            plans.append((f"{block.inputs[0]} ({block.features}, {boosting})", block, boosting,
                          lambda b: boost(task, b, targets, seed)))
    if len(blocks) > 1:
        plans.append((FUSED, fuse(blocks), model_word(task), lambda b: fit_linear(task, b.matrices, targets)))
    results = []
    for name, block, model, fit in plans:
        try:
            results.append(result_row(task, name, block, model, fit(block), split, targets))
        except ValueError as exc:
            notes.append(f"{name}: not fitted ({exc})")
    return results


def best_result(results: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The result with the best ``metric`` (None when no result has it)."""
    scored = [r for r in results if r.get(metric) is not None]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda r: float(r[metric]))


def device_for(cfg: Config) -> torch.device:
    """Where pretrained encoders run: the GPU when the config allows one and there is one."""
    gpu = cfg.training.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def run_baselines(cfg: Config, task: Task, preprocessors: dict[str, Preprocessor], tables: dict[str, Table],
                  examples: dict[str, list[Example]], split: str) -> dict[str, Any]:
    """Fits and scores every baseline; returns the JSON-able ``baselines`` entry of metrics.json.

    Args:
        cfg: the run's config (inputs, encoders, ``baseline``, ``training.seed``, path policy).
        task: the fitted task (targets, metrics).
        preprocessors: the fitted preprocessors (tabular statistics, decoding options, pretrained inputs).
        tables: the tables behind "train", "valid" and ``split``.
        examples: the preprocessed rows of those splits (the model's bad rows already left out).
        split: the split the baselines are scored on ("test", or "valid" when there is no test table).
    Returns:
        ``{"split", "source", "metric", "mode", "rows", "seconds", "results": [...], "best", "notes"}``;
        each result has ``name``, ``inputs``, ``features``, ``model``, ``choice``, ``features_s``, ``fit_s``
        and the task's scalar metrics.
    """
    from threadpoolctl import threadpool_limits

    from omnifuse.build import build_encoders

    started = time.perf_counter()
    metric, mode = task.default_monitor()
    payload: dict[str, Any] = {"split": split, "source": tables[split].source if split in tables else "",
                               "metric": metric, "mode": mode, "results": [], "best": None, "notes": []}
    if task.name == "contrastive":
        return payload | {"notes": [NO_CONTRASTIVE]}
    if TRAIN not in tables:
        return payload | {"notes": [STREAMED]}
    train = sample_rows(split_rows(tables[TRAIN], examples[TRAIN]), cfg.baseline.max_rows, cfg.training.seed)
    rows = {TRAIN: train, **{s: split_rows(tables[s], examples[s]) for s in dict.fromkeys(("valid", split))}}
    targets = {s: encoded_targets(r.examples) for s, r in rows.items()}
    notes: list[str] = [VALID_NOTE] if split == "valid" else []
    with threadpool_limits(limits=1):
        encoders = lambda: build_encoders(cfg, preprocessors, None, init_encoder)  # noqa: E731
        blocks = build_blocks(cfg, preprocessors, rows, encoders, device_for(cfg), notes)
        results = fit_all(task, blocks, targets, split, cfg.training.seed, notes)
    best = best_result(results, metric, mode)
    counts = {s: len(r.examples) for s, r in rows.items()} | {"train_total": len(examples[TRAIN])}
    return payload | {"rows": counts, "seconds": round(time.perf_counter() - started, 3), "results": results,
                      "best": None if best is None else best["name"], "notes": notes}
