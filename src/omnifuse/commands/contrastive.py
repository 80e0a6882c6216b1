"""CLI commands: contrastive (pretrain, zero-shot)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command("pretrain")(pretrain)
    app.command("zero-shot")(zero_shot)


def pretrain(
    config: Annotated[Path, typer.Option("--config", "-c", help="Contrastive YAML config "
                                         "(`omnifuse init-config --task contrastive`).")],
    train: Annotated[Path, typer.Option(help="Training table: CSV, TSV, Parquet or JSONL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    valid: Annotated[Path | None, typer.Option(help="Validation table (default: split of --train).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a model already in --out.")] = False,
    seed: Annotated[int | None, typer.Option(help="Override training.seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Contrastive pretraining: align two or more columns in one embedding space; save to --out."""
    import omnifuse
    from omnifuse.cli import _print_metrics, console
    from omnifuse.config.sections import Config
    from omnifuse.errors import ConfigError

    cfg = Config.from_yaml(config)
    if cfg.label.task != "contrastive":
        raise ConfigError([f"label.task: {cfg.label.task!r} in {config}; pretrain needs task: contrastive "
                           "(write one with `omnifuse init-config --task contrastive --columns A,B`), "
                           "or use `omnifuse train` for this config"])
    omnifuse.train(cfg, train=train, valid=valid, out=out, resume=resume, overwrite=overwrite, seed=seed,
                   progress=not quiet, console=console)
    _print_metrics(out / "metrics.json")
    column = cfg.contrastive.columns[0] if cfg.contrastive else "COLUMN"
    console.print(
        f"[green]Saved the pretrained model to {out}[/green]. Next:\n"
        f"  omnifuse evaluate --model {out} --data TABLE\n"
        f"  omnifuse index --model {out} --data TABLE --column {column} --out index/\n"
        f"  fine-tune: in a train config, encoder: {{..., init_from: {out}, init_column: {column}}}"
    )


def zero_shot(
    model: Annotated[Path, typer.Option("--model", "-m", help="Folder written by `omnifuse pretrain`.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Table: CSV, TSV, Parquet or JSONL.")],
    column: Annotated[str, typer.Option(help="The tower to classify, e.g. image.")],
    classes: Annotated[str, typer.Option(help="Comma-separated class names, e.g. 't-shirt,trouser'.")],
    template: Annotated[str, typer.Option(help="Prompt with {} for the class name.")] = "{}",
    label: Annotated[str | None, typer.Option(help="Label column for accuracy (default: the model's "
                                              "label column when the table has it).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("predictions.csv"),
) -> None:
    """Zero-shot classification: each row's column against the embedded class prompts."""
    import json

    from omnifuse.cli import console
    from omnifuse.contrastive.zero_shot import accuracy, zero_shot
    from omnifuse.data.io import read_table
    from omnifuse.errors import DataError
    from omnifuse.inference.predictor import load

    predictor = load(model)
    table = read_table(data)
    frame = zero_shot(predictor, table.frame, column, classes.split(","), template, base_dir=table.base_dir)
    frame.to_csv(out, index=False)
    console.print(f"[green]Wrote {len(frame)} zero-shot prediction(s) to {out}[/green]")
    label = label or predictor.config.label.column or None
    if label is not None and label not in table.frame.columns:
        if label == predictor.config.label.column:
            return  # the model's label column is optional in the table
        raise DataError(f"--label {label!r} is not a column of {table.source}; its columns: "
                        f"{', '.join(map(str, table.frame.columns))}")
    if label is not None:
        acc = accuracy(frame["prediction"], list(table.frame[label]))
        path = out.with_name(f"{out.stem}_metrics.json")
        path.write_text(json.dumps({"accuracy": acc, "n": len(frame), "label": label}, indent=2))
        shown = "n/a (no labels)" if acc is None else f"{acc:.4f}"
        console.print(f"zero-shot accuracy against {label!r}: {shown} (written to {path})")
