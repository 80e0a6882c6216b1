"""CLI commands: retrieval (``embed``, ``index``, ``search``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model folder (from `omnifuse pretrain`).")]
DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Table: CSV, TSV, Parquet or JSONL.")]
ColumnOpt = Annotated[str, typer.Option("--column", help="The column to embed (one of the model's towers).")]
IdOpt = Annotated[str | None, typer.Option("--id-column", help="Column of unique row ids "
                                           "(default: 'id' when the table has one, else row numbers).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
KINDS_HELP = "auto (exact below --exact-below rows, else ivf), flat (exact), ivf or hnsw (approximate)."


def embed(model: ModelOpt, data: DataOpt, column: ColumnOpt,
          out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file to write.")],
          id_column: IdOpt = None, quiet: QuietOpt = False) -> None:
    """Embed one column of a table: a Parquet file of row ids and embeddings (lists of floats)."""
    from omnifuse.cli import console
    from omnifuse.retrieval.table import embed_to_parquet

    frame = embed_to_parquet(model, data, column, out, id_column, progress=not quiet, console=console)
    dim = len(frame["embedding"].iloc[0]) if len(frame) else 0
    console.print(f"[green]Wrote {len(frame)} embedding(s) of {dim} dimensions to {out}[/green]")


def index(model: ModelOpt, data: DataOpt, column: ColumnOpt,
          out: Annotated[Path, typer.Option("--out", "-o", help="Index folder to write.")],
          kind: Annotated[str, typer.Option(help=KINDS_HELP)] = "auto",
          append: Annotated[bool, typer.Option(help="Add the rows to the index already in --out.")] = False,
          overwrite: Annotated[bool, typer.Option(help="Replace an index already in --out.")] = False,
          exact_below: Annotated[int, typer.Option(help="auto: exact search below this many rows.")] = 50_000,
          nprobe: Annotated[int, typer.Option(help="ivf: buckets scanned per query.")] = 32,
          id_column: IdOpt = None, quiet: QuietOpt = False) -> None:
    """Embed a column and build a FAISS index of it (row ids and the other columns kept as metadata)."""
    from omnifuse.cli import console
    from omnifuse.retrieval import IndexOptions
    from omnifuse.retrieval.table import index_table

    options = IndexOptions(kind=kind, exact_below=exact_below, nprobe=nprobe)
    options.validate()
    built = index_table(model, data, column, out, options, append=append, overwrite=overwrite,
                        id_column=id_column, progress=not quiet, console=console)
    console.print(f"[green]{'Updated' if append else 'Wrote'} {out}[/green]: {built.count} row(s), "
                  f"{built.dim} dimensions, {built.kind} index. Next:\n"
                  f"  omnifuse search --index {out} --text \"...\"")


IndexOpt = Annotated[Path, typer.Option("--index", "-i", help="Index folder from `omnifuse index`.")]
TowerOpt = Annotated[str | None, typer.Option(help="The tower that embeds the query "
                                              "(default: the first of the query's modality).")]


def search(index_dir: IndexOpt,
           text: Annotated[str | None, typer.Option(help="Search with this text.")] = None,
           image: Annotated[Path | None, typer.Option(help="Search with this image file.")] = None,
           audio: Annotated[Path | None, typer.Option(help="Search with this audio file.")] = None,
           k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
           column: TowerOpt = None) -> None:
    """Search an index with a text, an image or a sound; print the best rows with their scores."""
    from rich.console import Console

    from omnifuse.retrieval import load_index

    index = load_index(index_dir)
    hits = index.search(text=text, image=image, audio=audio, k=k, column=column)
    Console().print(results_table(hits, item=index.source.column))


def results_table(hits: pd.DataFrame, item: str | None = None) -> Table:
    """The hits as a rich table: rank, score, id, the indexed ``item`` column (shown whole, never cut),
    then the other metadata columns."""
    from rich.table import Table

    first = ["rank", "score", "id"] + ([item] if item in hits.columns else [])
    hits = hits[first + [c for c in hits.columns if c not in first]]
    table = Table(title=f"{len(hits)} result(s)")
    for name in hits.columns:
        if name == item:
            widest = max((len(str(v)) for v in hits[name]), default=len(name))
            table.add_column(str(name), min_width=max(len(str(name)), widest), overflow="fold")
        else:
            table.add_column(str(name), justify="right" if name in ("rank", "score") else "left")
    for row in hits.itertuples(index=False):
        pairs = zip(hits.columns, row, strict=True)
        table.add_row(*(f"{value:.4f}" if name == "score" else str(value) if name == item else _cell(value)
                        for name, value in pairs))
    return table


def _cell(value: object, limit: int = 60) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"  # NaN: an empty cell
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command()(embed)
    app.command()(index)
    app.command()(search)
