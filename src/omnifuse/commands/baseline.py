"""CLI command: ``omnifuse baseline`` (classical features + scikit-learn models: the floor to beat)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def baseline(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see `omnifuse init-config`).")],
    train: Annotated[Path, typer.Option("--train", help="Training table: CSV, TSV, Parquet or JSONL.")],
    test: Annotated[Path, typer.Option(help="Test table the baselines are scored on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for baselines.json, baselines.csv, "
                                      "report.md and plots/.")],
    valid: Annotated[Path | None, typer.Option(help="Validation table (default: split of --train).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Fit classical baselines per input and fused (pixels+HOG, MFCC, TF-IDF, raw columns, pretrained
    embeddings; logistic/ridge, gradient boosting) and score them on --test."""
    from rich.console import Console

    from omnifuse.baselines.report import rich_table, summary_line
    from omnifuse.baselines.standalone import run_baseline
    from omnifuse.cli import console

    baselines = run_baseline(config, train, valid, test, out, progress=not quiet, console=console)
    Console().print(rich_table(baselines))
    for note in baselines["notes"]:
        console.print(f"  note: {note}", markup=False, highlight=False)
    console.print(summary_line(baselines), markup=False, highlight=False)
    written = f"{out / 'baselines.json'}, {out / 'baselines.csv'} and {out / 'report.md'}"
    console.print(f"[green]Wrote {written}[/green]")


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command()(baseline)
