"""Runs the omnifuse benchmarks (``make bench``): prints a table of ratios and writes bench/results.json.

Benchmarks are not tests: they never fail on a timing. Each row compares omnifuse against a baseline
measured in the same run, on the same machine, interleaved; read the ratio, not the absolute numbers.

Usage:
    .venv/bin/python bench/run.py                 # everything (about 3 minutes on 2 CPU cores)
    .venv/bin/python bench/run.py --quick         # smoke run: fewer repeats and rows
    .venv/bin/python bench/run.py --only predict_latency
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_batch_predict  # noqa: E402
import bench_channels_last  # noqa: E402
import bench_chat_server  # noqa: E402
import bench_data_pipeline  # noqa: E402
import bench_feature_cache  # noqa: E402
import bench_generation  # noqa: E402
import bench_index  # noqa: E402
import bench_length_grouping  # noqa: E402
import bench_onnx  # noqa: E402
import bench_optimizer  # noqa: E402
import bench_predict_latency  # noqa: E402
import bench_presets  # noqa: E402
import bench_quality  # noqa: E402
import bench_quality_text  # noqa: E402
import bench_serving  # noqa: E402
import bench_streaming  # noqa: E402
import bench_training_loop  # noqa: E402
import bench_tune  # noqa: E402
import torch  # noqa: E402
from common import BENCH_DIR, BenchResult, Settings, machine_info, result_dict  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        bench_training_loop,
        bench_length_grouping,
        bench_channels_last,
        bench_optimizer,
        bench_predict_latency,
        bench_feature_cache,
        bench_batch_predict,
        bench_data_pipeline,
        bench_onnx,
        bench_serving,
        bench_generation,
        bench_chat_server,
        bench_streaming,
        bench_index,
        bench_quality,
        bench_quality_text,
        bench_presets,
        bench_tune,
    )
}
RESULTS = BENCH_DIR / "results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats and rows")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per side (default 5, quick 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    return parser.parse_args(argv)


def results_table(results: list[BenchResult]) -> Table:
    """The main table: one row per result."""
    table = Table(title="omnifuse benchmarks (medians; ratio = omnifuse vs a baseline measured in this run)")
    for column, justify in (("benchmark", "left"), ("metric", "left"), ("omnifuse", "right"),
                            ("baseline", "right"), ("ratio", "right"), ("goal", "right"), ("", "center"),
                            ("notes", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        ok = r.meets_goal()
        mark = "info" if ok is None else ("[green]ok[/green]" if ok else "[red]MISS[/red]")
        cpu = r.details.get("cpu_time_ratio")
        note = r.note + (f"; cpu-time ratio {cpu:.3f}" if cpu is not None else "")
        table.add_row(r.name, r.metric, f"{r.omnifuse:.2f}", f"{r.baseline:.2f}", f"{r.ratio:.3f}",
                      r.goal or "-", mark, note)
    return table


def breakdown_table(result: BenchResult) -> Table:
    """Per-stage latencies of one predict call (rows indented with two spaces are parts of the row above)."""
    table = Table(title="Predictor.predict(one row): where the time goes")
    for column in ("stage", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, stats in result.details["breakdown_ms"].items():
        table.add_row(stage, f"{stats['p50_ms']:.2f}", f"{stats['p99_ms']:.2f}")
    total = result.details["predict"]
    table.add_row("[bold]predict() end to end[/bold]", f"{total['p50_ms']:.2f}", f"{total['p99_ms']:.2f}")
    return table


def main(argv: list[str] | None = None) -> int:
    """Runs the chosen benchmarks, prints the tables and writes the results file."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 5)
    settings = Settings(quick=args.quick, repeats=repeats)
    console = Console(width=None if sys.stdout.isatty() else 150)  # piped output: keep the table whole
    info = machine_info()
    console.print(f"machine: {info['cpu_count']} CPUs, torch {info['torch_version']} with "
                  f"{info['torch_threads']} threads, load average {info['load_average_1_5_15']}")
    if info["load_average_1_5_15"][0] > 0.5 * (info["cpu_count"] or 1):
        console.print("[yellow]the machine is busy (load average above half its CPUs): timings will be "
                      "noisy; rerun when it is idle, or with --threads 1 for steadier ratios[/yellow]")
    results: list[BenchResult] = []
    seconds: dict[str, float] = {}
    for name in args.only or list(BENCHMARKS):
        console.print(f"[bold]running {name}[/bold] ({'quick' if args.quick else 'full'}, {repeats} repeats)")
        started = time.perf_counter()
        results += BENCHMARKS[name].run(settings)
        seconds[name] = round(time.perf_counter() - started, 1)
    console.print(results_table(results))
    for r in results:
        if "breakdown_ms" in r.details:
            console.print(breakdown_table(r))
    payload: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {"quick": args.quick, "repeats": repeats, "only": args.only},
        "machine": info | {"load_average_after": machine_info()["load_average_1_5_15"]},
        "seconds_per_benchmark": seconds,
        "results": {r.name: result_dict(r) for r in results},
    }
    if args.only:
        payload = merged_with(args.out, payload)
    args.out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    console.print(f"wrote {args.out} ({sum(seconds.values()):.0f} s of benchmarks)")
    return 0


def merged_with(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """A run of some benchmarks (``--only``) added to the results file already at ``path``: its rows and
    seconds replace those of the same names, the other benchmarks' rows stay (with their own machine)."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return payload
    if not isinstance(earlier, dict) or not isinstance(earlier.get("results"), dict):
        return payload
    runs = [r for r in earlier.get("runs", []) if isinstance(r, dict)]
    runs.append({k: payload[k] for k in ("timestamp", "settings", "machine")})
    return payload | {
        "seconds_per_benchmark": earlier.get("seconds_per_benchmark", {}) | payload["seconds_per_benchmark"],
        "results": earlier["results"] | payload["results"],
        "runs": runs[-20:],  # the partial runs merged into this file, newest last
    }


if __name__ == "__main__":
    raise SystemExit(main())
