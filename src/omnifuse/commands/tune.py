"""CLI command: tune (``omnifuse tune --config C --train T --valid V --out DIR [--trials N] ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command("tune")(tune)


def tune(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config with a `search:` section.")],
    train: Annotated[Path, typer.Option("--train", help="Training table: CSV, TSV, Parquet or JSONL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder: study.db, trials/, "
                                      "best_config.yaml, best_model/, trials.csv, report.md.")],
    valid: Annotated[Path | None, typer.Option(help="Validation table (default: split of --train).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials this call runs (over all workers); a second "
                                        "call on the same study adds as many.")] = 20,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", help="Seconds for the whole call: no trial starts after it, and each trial's "
        "training.time_limit is capped at what is left.")] = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna RDB URL (default sqlite:///OUT/study.db), e.g. postgresql://user:pass@host/db: "
        "several machines on one URL share the study.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes running trials on the same storage "
                                         "(one torch thread each).")] = 1,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    study_name: Annotated[str, typer.Option("--study-name", help="The study in the storage; an existing "
                                            "one is resumed.")] = "omnifuse",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Search hyper-parameters with Optuna (TPE, pruning): best config, best model, trials.csv, report."""
    from rich.console import Console

    from omnifuse.tuning.run import tune as run_tune

    console = Console(stderr=True)
    result = run_tune(config, train, valid, out, trials=trials, time_limit=time_limit, storage=storage,
                      workers=workers, pruner=pruner, study_name=study_name, progress=not quiet,
                      console=console)
    console.print(
        f"Next:\n  omnifuse evaluate --model {result.best_model} --data TABLE\n"
        f"  omnifuse train --config {result.best_config_path} --train {train} --out model/   "
        "(the best config on other data)\n"
        f"  omnifuse tune ... --out {out} --study-name {study_name}   (the same command adds trials)"
    )
