"""CLI command: ``omnifuse generate`` (the text a generation model writes for every row of a table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def generate(
    model: Annotated[Path, typer.Option("--model", "-m", help="A trained generation model folder.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Table of inputs: CSV, TSV, Parquet or JSONL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("generated.csv"),
    max_new_tokens: Annotated[int | None, typer.Option(
        min=1, help="Most tokens written per row (default: the config's generation.max_new_tokens).")] = None,
    num_beams: Annotated[int | None, typer.Option(min=1, help="Beam search width (1: greedy).")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, help="> 0 samples at this temperature.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Sampling: nucleus probability.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling: the same seed writes the same text.")] = None,
) -> None:
    """Write a text for every row of a table with a generation model: one output row per input row, in
    order, in the column ``generated``."""
    import pandas as pd

    from omnifuse.cli import console
    from omnifuse.inference.predictor import load

    texts = load(model).generate(data, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                 temperature=temperature, top_p=top_p, seed=seed)
    pd.DataFrame({"generated": texts}).to_csv(out, index=False)
    console.print(f"[green]Wrote {len(texts)} generated text(s) to {out}[/green]")


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command()(generate)
