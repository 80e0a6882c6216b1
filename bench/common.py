"""Shared benchmark helpers: timing (warm-up, interleaved repeats, medians, percentiles), results,
machine info, and the small AV-Digits setup both benchmarks start from.

Benchmarks are not tests: nothing here asserts a timing. Machines are shared and noisy, so every
measurement is repeated, the two sides of a comparison are interleaved (A, B, A, B, ...) so that a burst
of load hits both, and medians are reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"  # built tables and model folders; safe to delete


@dataclass(frozen=True)
class Settings:
    """How hard a run measures.

    Attributes:
        quick: a smoke run (fewer repeats and rows).
        repeats: timed repeats per side of a comparison.
        warmup: untimed calls before timing starts.
    """

    quick: bool = False  # smoke run: fewer repeats and rows
    repeats: int = 5  # timed repeats per side
    warmup: int = 1  # untimed calls first


@dataclass
class Sample:
    """One timed call: wall-clock and process CPU seconds."""

    wall: float
    cpu: float


@dataclass
class BenchResult:
    """One row of the results table.

    Attributes:
        name: benchmark row name.
        metric: what ``omnifuse`` and ``baseline`` measure (e.g. "samples/s", "p50 ms").
        omnifuse: omnifuse's median.
        baseline: the baseline's median, measured in the same run.
        ratio: omnifuse / baseline (for a throughput: higher is better; for a latency: lower is better).
        goal: e.g. ">= 0.95" or "<= 1.5"; "" for an informational row.
        details: more medians and percentiles (goes to results.json; a few go to the table's notes).
        note: one short line for the table.
    """

    name: str
    metric: str
    omnifuse: float
    baseline: float
    ratio: float
    goal: str
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def meets_goal(self) -> bool | None:
        """Whether ``ratio`` satisfies ``goal`` (``">= x"`` or ``"<= x"``); None for an informational row."""
        if self.goal in ("", "-"):
            return None
        op, value = self.goal.split()
        return self.ratio >= float(value) if op == ">=" else self.ratio <= float(value)


def time_call(fn: Callable[[], Any]) -> Sample:
    """Runs ``fn`` once and returns its wall-clock and process-CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


def interleaved(sides: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list[Sample]]:
    """Times each side ``repeats`` times, alternating sides (and their order) after ``warmup`` calls each.

    Alternating the order every round keeps a side from always running first (cold caches) or last.
    """
    return interleaved_prepared({name: _ready(fn) for name, fn in sides.items()}, repeats, warmup)


def interleaved_prepared(factories: dict[str, Callable[[], Callable[[], Any]]], repeats: int,
                         warmup: int) -> dict[str, list[Sample]]:
    """Like ``interleaved``, but each call first runs its side's factory (untimed) to get what to time.

    Use it when every repeat needs fresh state (a new model and optimizer) whose making is not measured.
    """
    for factory in factories.values():
        for _ in range(warmup):
            factory()()
    samples: dict[str, list[Sample]] = {name: [] for name in factories}
    names = list(factories)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            fn = factories[name]()
            samples[name].append(time_call(fn))
    return samples


def _ready(fn: Callable[[], Any]) -> Callable[[], Callable[[], Any]]:
    return lambda: fn


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median over rounds of ``numerators[i] / denominators[i]``.

    Interleaved samples of one round ran back to back under the same machine load, so their ratio is
    steadier on a shared machine than the ratio of the two medians.
    """
    return median([n / d for n, d in zip(numerators, denominators, strict=True)])


def median(values: list[float]) -> float:
    """The median (``nan`` for no values)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation between order statistics."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_stats_ms(seconds: list[float]) -> dict[str, float]:
    """p50 / p99 / mean / min of per-call seconds, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms), "min_ms": min(ms), "calls": len(ms)}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1_5_15": [round(x, 2) for x in load],
    }


def result_dict(result: BenchResult) -> dict[str, Any]:
    """A BenchResult as JSON-able values."""
    return asdict(result) | {"meets_goal": result.meets_goal()}


# -- the AV-Digits setup shared by the benchmarks ------------------------------------------------

@dataclass
class AVSetup:
    """A built AV-Digits table and the fitted pieces of its fused model (image + audio, attention)."""

    data: Path
    config: Any  # omnifuse.config.sections.Config
    task: Any  # omnifuse.tasks.base.Task
    preprocessors: dict[str, Any]  # {input name: fitted Preprocessor}


# The compute-bound fused model the serving overhead goal was set on (issue 12: a forward of 1.66 ms/row at
# batch 1 and 1.87 at batch 32 on 2 cores): the demo's fused AV-Digits model before its defaults moved to
# mfcc_stats audio and late fusion (whose forward costs 0.45 ms/row at batch 16).
MEL_CNN_MODEL = (
    ("image", (("type", "image"), ("encoder", (("name", "small_cnn"), ("size", 28), ("channels", 1))))),
    ("audio", (("type", "audio"), ("encoder", (("name", "mel_cnn"), ("n_mels", 40), ("max_seconds", 1.5))))),
    ("fusion", "attention"),
)


@lru_cache(maxsize=4)
def av_digits_setup(n_train: int, n_valid: int, model: tuple[Any, ...] | None = None) -> AVSetup:
    """Builds (or reuses) ``bench/.cache/av_digits_<n_train>_<n_valid>`` and fits task + preprocessors.

    The config is the demo's fused AV-Digits model (``small_cnn`` 28x28 image, ``mfcc_stats`` audio, late
    fusion) on the CPU; ``model`` (hashable ``((key, value), ...)`` pairs such as ``MEL_CNN_MODEL``, nested
    the same way) replaces its ``image`` and ``audio`` columns and its ``fusion``.
    """
    from omnifuse.build import make_preprocessors
    from omnifuse.config.sections import Config
    from omnifuse.data.dataset import fit_values, input_specs
    from omnifuse.data.io import read_table
    from omnifuse.datasets import build_av_digits
    from omnifuse.tasks import make_task
    from omnifuse.workflows.demo import AV_DIGITS, demo_config

    data = build_av_digits(CACHE_DIR / f"av_digits_{n_train}_{n_valid}", n_train=n_train, n_valid=n_valid,
                           n_test=32, seed=0, progress=False)
    config = demo_config(AV_DIGITS, sorted(AV_DIGITS.columns))
    if model is not None:
        raw = config.to_dict()
        changes = _as_dict(model)
        raw["columns"] |= {k: v for k, v in changes.items() if k != "fusion"}
        raw["fusion"] = changes.get("fusion", raw["fusion"])
        config = Config.from_dict(raw)
    config.training.accelerator = "cpu"  # both sides of every comparison run on the CPU
    table = read_table(data / "train.csv")
    task = make_task(config.label.task)
    task.fit(list(table.frame[config.label.column]))
    preprocessors = make_preprocessors(config)
    for spec in input_specs(config):
        preprocessors[spec.name].fit(fit_values(spec, table.frame, table.base_dir))
    return AVSetup(data, config, task, preprocessors)


def _as_dict(pairs: Any) -> Any:
    """Nested ``((key, value), ...)`` tuples as nested dicts (other values as they are)."""
    if isinstance(pairs, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                        for p in pairs):
        return {key: _as_dict(value) for key, value in pairs}
    return pairs


def prepared_examples(setup: AVSetup, split: str) -> list[Any]:
    """The split's rows as omnifuse Examples with targets, made by omnifuse's own preprocessing."""
    from omnifuse.data.dataset import attach_targets, input_specs, make_examples
    from omnifuse.data.io import read_table

    table = read_table(setup.data / f"{split}.csv")
    examples, bad = make_examples(table.frame, input_specs(setup.config), setup.preprocessors, setup.config,
                                  table.base_dir)
    label = setup.config.label.column
    examples, bad_labels = attach_targets(examples, table.frame[label], setup.task, label)
    if bad or bad_labels:
        raise RuntimeError(f"AV-Digits {split} split has bad rows: {(bad + bad_labels)[:3]}; "
                           f"delete {CACHE_DIR} and run again")
    return examples
