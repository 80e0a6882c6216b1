"""The `omnifuse` command line: a thin Typer shell over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multimodal deep learning from a table: train, evaluate, predict, explain, compare, demo.",
)
console = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config (see `omnifuse init-config`).")]
TrainOpt = Annotated[Path, typer.Option("--train", help="Training table: CSV, TSV, Parquet or JSONL.")]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model folder written by `omnifuse train`.")]
DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Table: CSV, TSV, Parquet or JSONL.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@app.command("init-config")
def init_config(
    train: TrainOpt,
    label: Annotated[
        str | None, typer.Option(help="The column to predict (optional with --task contrastive).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the YAML.")] = Path("config.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    task: Annotated[str | None, typer.Option(help="contrastive: a pretraining config; generation: --label is "
                                             "the text to write (default: the task inferred from --label).")
                    ] = None,
    columns: Annotated[str | None, typer.Option(help="--task contrastive: the columns to align; --task "
                                                "generation: the input columns (default: all); "
                                                "comma-separated, e.g. image,description.")] = None,
    prompt_column: Annotated[str | None, typer.Option(
        help="--task generation: a text column the language model reads as its own prompt tokens (a "
             "question, an instruction; encoder lm_prompt).")] = None,
) -> None:
    """Infer column types and the task from a table; write a commented config."""
    from omnifuse.data.io import read_table
    from omnifuse.workflows import init_config as ic

    if out.exists() and not force:
        _fail(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if task not in (None, "contrastive", "generation"):
        _fail(f"--task {task!r}: only 'contrastive' and 'generation' are chosen by hand; leave --task out "
              "for the others")
    names = [c.strip() for c in (columns or "").split(",") if c.strip()]
    if task == "generation":
        table = read_table(train)
        label, prompt_column = ic.conversation_defaults(table, label, prompt_column)
        if label is None:
            _fail("--task generation needs --label, the text column to write (a caption, an answer)")
        assert label is not None
        config, notes = ic.build_generation_config(table, label, names or None, prompt_column)
    elif prompt_column is not None:
        _fail("--prompt-column is for --task generation (the language model's prompt)")
    elif task == "contrastive":
        if len(names) < 2:
            _fail("--task contrastive needs --columns with two or more columns, e.g. --columns image,text")
        config, notes = ic.build_contrastive_config(read_table(train), names, label)
    elif label is None:
        _fail("--label is required (the column to predict), unless --task contrastive")
    else:
        config, notes = ic.build_config(read_table(train), label)
    out.write_text(ic.render_yaml(config, notes), encoding="utf-8")
    for note in notes:
        console.print(f"  {note}")
    console.print(
        f"[green]Wrote {out}[/green]. Review it, then run:\n"
        f"  omnifuse {'pretrain' if task == 'contrastive' else 'train'} --config {out} --train {train} "
        "--out model/"
    )


@app.command()
def train(
    config: ConfigOpt,
    train: TrainOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    valid: Annotated[Path | None, typer.Option(help="Validation table (default: split of --train).")] = None,
    test: Annotated[Path | None, typer.Option(help="Test table, reported at the end.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a model already in --out.")] = False,
    seed: Annotated[int | None, typer.Option(help="Override training.seed.")] = None,
    quiet: QuietOpt = False,
    devices: Annotated[str | None, typer.Option(help="Override training.devices: processes per machine "
                                                "(GPUs; CPUs with --strategy ddp), or auto.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Override training.strategy: auto, ddp, fsdp.")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Override training.num_nodes (machines).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="Override training.accelerator: cpu, gpu, "
                                                    "mps or auto.")] = None,
    precision: Annotated[str | None, typer.Option(help="Override training.precision: 32-true, "
                                                  "bf16-mixed or 16-mixed.")] = None,
    preset: Annotated[str | None, typer.Option(help="fast (a quick look), medium (the config as written) or "
                                               "best (pretrained encoders, several members, an ensemble); "
                                               "default: the config's preset.")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Override training.time_limit: seconds of "
                                                     "training (best: for all members).")] = None,
) -> None:
    """Train a model and save it to --out (several processes: see README, Distributed training)."""
    import omnifuse
    from omnifuse.config.sections import Config, override_training
    from omnifuse.training.distributed import is_rank_zero

    count: int | str | None = int(devices) if devices is not None and devices.isdigit() else devices
    run_config = override_training(Config.from_yaml(config), devices=count, strategy=strategy,
                                   num_nodes=num_nodes, accelerator=accelerator, precision=precision,
                                   time_limit=time_limit)
    omnifuse.train(
        run_config,
        train=train,
        valid=valid,
        test=test,
        out=out,
        resume=resume,
        overwrite=overwrite,
        seed=seed,
        preset=preset,
        progress=not quiet,
        console=console,
    )
    if not is_rank_zero():  # DDP: rank 0 reports
        return
    _print_metrics(out / "metrics.json")
    console.print(
        f"[green]Saved the model to {out}[/green] (report: {out / 'report.md'}). Next:\n"
        f"  omnifuse evaluate --model {out} --data TABLE\n"
        f"  omnifuse predict --model {out} --data TABLE --out predictions.csv"
    )


@app.command()
def evaluate(
    model: ModelOpt,
    data: DataOpt,
    out: Annotated[Path | None, typer.Option(help="Report folder (default MODEL/evaluation).")] = None,
    label: Annotated[str | None, typer.Option(help="Contrastive models: the table's class column, for "
                                              "precision@10 and map.")] = None,
    shift_test: Annotated[Path | None, typer.Option(
        "--shift-test", help="A labelled table drawn under a shift (another speaker, camera, source): "
        "scored beside --data with each input removed and its OOD flag rates.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a model on a labelled table: metrics.json, report.md, plots."""
    import omnifuse

    target = out or model / "evaluation"
    omnifuse.evaluate(model, data, target, progress=not quiet, console=console, label=label,
                      shift_test=shift_test)
    _print_metrics(target / "metrics.json")
    console.print(f"[green]Wrote {target / 'metrics.json'} and {target / 'report.md'}[/green]")


@app.command()
def validate(
    data: DataOpt,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML config (see `omnifuse init-config`).")] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", "-m", help="Instead of --config: a model folder, to check the table for drift.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for bad_rows.csv and column_warnings.csv.")] = None,
) -> None:
    """Check a table against a config without training: bad rows with their fix, per-column summaries.
    With --model: the share of each column's values the model's OOD scores flag (a drift check).

    Exit code 0: every row can be used (no column drifted); 1: some rows are bad (a column drifted);
    2: the config, the model or the table is unusable. Input columns that leak the label, row ids,
    constant and empty columns are warnings (same code).
    """
    if (config is None) == (model is None):
        console.print("[bold red]error:[/bold red] give --config (check a table before training) or "
                      "--model (check it for drift against a trained model), not both or neither")
        raise typer.Exit(code=2)
    if model is not None:
        from omnifuse.workflows.drift import run_drift

        code = run_drift(model, data, console)
        if code:
            raise typer.Exit(code=code)
        return
    from omnifuse.workflows.table_checks import run_validate

    assert config is not None
    code = run_validate(config, data, out, console)
    if code:
        raise typer.Exit(code=code)


@app.command()
def predict(
    model: ModelOpt,
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("predictions.csv"),
    workers: Annotated[int, typer.Option(
        "--workers", min=0, help="Processes that decode and preprocess rows while the model runs (0: none)."
    )] = 0,
) -> None:
    """Predict every row of a table: one output row per input row, in order."""
    from omnifuse.inference.predict_table import predict_table

    frame = predict_table(model, data, num_workers=workers)
    frame.to_csv(out, index=False)
    console.print(f"[green]Wrote {len(frame)} prediction(s) to {out}[/green]")


@app.command()
def explain(
    model: ModelOpt,
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("explanations.csv"),
) -> None:
    """Explain every row: prediction, probability, and per input its fusion weight and removal delta."""
    from omnifuse.inference.explain import explain as explain_rows
    from omnifuse.inference.explain import write_explanations
    from omnifuse.inference.predictor import load

    frame = explain_rows(load(model), data)
    write_explanations(frame, out)
    console.print(f"[green]Wrote {len(frame)} explanation(s) to {out}[/green]")


@app.command()
def compare(
    config: ConfigOpt,
    train: TrainOpt,
    test: Annotated[Path, typer.Option(help="Test table every method is scored on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results.csv, summary.csv, "
                                      "comparison.png, report.md and runs/.")],
    valid: Annotated[Path | None, typer.Option(help="Validation table (default: split of --train).")] = None,
    fusions: Annotated[str, typer.Option(help="'all' or a comma-separated list, e.g. concat,late.")] = "all",
    seeds: Annotated[int, typer.Option(help="Training runs per method (seeds training.seed + i).")] = 3,
    shift_test: Annotated[Path | None, typer.Option(
        "--shift-test", help="A labelled table drawn under a shift: every method is scored there too, "
        "with its OOD flag rate per input.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Compare unimodal baselines and fusion methods over several seeds: table, plot, report."""
    from omnifuse.workflows.compare import run_compare

    run_compare(config, train, valid, test, out, fusions=fusions, seeds=seeds, progress=not quiet,
                console=console, shift_test=shift_test)


@app.command()
def demo(
    dataset: Annotated[
        str, typer.Option(help="av_digits (image + audio), fashion (image + text), or av_digits_qa (a "
                                "generation model answering questions about a picture and a voice).")
    ] = "av_digits",
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and models.")] = Path("runs/demo"),
    quick: Annotated[bool, typer.Option(help="Tiny table, 2 epochs: a smoke run of the whole path.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Build a bundled table, train unimodal and fused models, compare them, predict."""
    if dataset == "av_digits_qa":
        from omnifuse.workflows.demo_chat import run_chat_demo

        run_chat_demo(out, console=console, progress=not quiet, quick=quick)
        return
    from omnifuse.workflows.demo import run_demo

    run_demo(dataset, out, console=console, progress=not quiet, quick=quick)


@app.command("list")
def list_parts() -> None:
    """List the registered encoders, fusions, heads and augmentations."""
    from omnifuse.augment.base import AUGMENTS, MODALITY_READS
    from omnifuse.catalog import list_heads
    from omnifuse.encoders.base import ENCODERS
    from omnifuse.fusion.base import FUSIONS

    for name in ENCODERS.names():
        spec = ENCODERS.get(name)
        typer.echo(f"encoder  {name:<20} {spec.modality:<9} {spec.summary}")
    for name in FUSIONS.names():
        typer.echo(f"fusion   {name:<20} {'':<9} {FUSIONS.get(name).summary}")
    typer.echo(f"heads    {', '.join(list_heads())}")
    for name in AUGMENTS.names():
        entry = AUGMENTS.get(name)
        modality = next((m for m, reads in MODALITY_READS.items() if reads == entry.reads), "")
        typer.echo(f"augment  {name:<20} {modality:<9} {entry.summary}")


def _register_groups() -> None:
    import importlib

    from omnifuse.commands import GROUPS

    for group in GROUPS:
        importlib.import_module(f"omnifuse.commands.{group}").register(app)


_register_groups()


def _print_metrics(path: Path) -> None:
    import json

    from omnifuse.evaluation.report import format_metrics_table

    if path.exists():
        metrics: dict[str, Any] = json.loads(path.read_text())
        task = "regression" if "rmse" in metrics else "multilabel" if "micro_f1" in metrics else "multiclass"
        task = "contrastive" if "recall@1" in metrics else "generation" if "exact_match" in metrics else task
        Console().print(format_metrics_table(metrics, task))


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code=2)


BUG_LINE = ("omnifuse stopped on an unexpected error: this is a bug in omnifuse, not a problem it found in "
            "your input or config; please report it with the traceback above and the command you ran")
PEER_LINE = ("error: another training process (DDP rank) stopped, so this one stopped too; the reason is "
             "printed above by that rank (look for 'rank N: error:')")


def main() -> None:
    """Entry point: runs the app; omnifuse's own errors print one clear message and exit with 2 (130 for
    Ctrl-C during training, after the message saying how to resume); any other exception is a bug: its
    traceback, a line saying so, exit status 1. Under DDP a rank other than 0 names itself in its message,
    and a rank whose peer stopped says so instead of showing the transport's traceback."""
    from omnifuse.errors import OmnifuseError
    from omnifuse.training.interrupt import TrainingInterrupted

    try:
        app()
    except TrainingInterrupted as exc:  # Ctrl-C: the conventional exit status 128 + SIGINT
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        sys.exit(130)
    except OmnifuseError as exc:
        _print_user_error(exc)
        sys.exit(1 if getattr(exc, "bug", False) else 2)  # 1: another DDP rank stopped on a bug
    except Exception as exc:  # not an input problem omnifuse knows of: a bug; show where, and say so
        if _peer_stopped(exc):
            print(PEER_LINE, file=sys.stderr)
            sys.exit(1)
        import traceback

        traceback.print_exc()
        print(BUG_LINE, file=sys.stderr)
        sys.exit(1)


def _print_user_error(exc: Exception) -> None:
    """The error in one line; on a DDP rank other than 0 prefixed with the rank, since an error raised on
    one rank only (a bad row in its shard of a streamed table) is printed by that rank alone. One print,
    so the lines of ranks that stop at the same moment do not interleave."""
    from rich.text import Text

    from omnifuse.training.distributed import global_rank

    rank = global_rank()
    line = Text.assemble(f"rank {rank}: " if rank else "", ("error:", "bold red"), " ", str(exc))
    console.print(line, highlight=False, soft_wrap=True)


def _peer_stopped(exc: Exception) -> bool:
    """Whether ``exc`` is a collective failing because another DDP rank's process ended."""
    from omnifuse.training.distributed import world_size

    text = str(exc)
    return world_size() > 1 and isinstance(exc, RuntimeError) and (
        "Connection closed by peer" in text or "Connection reset by peer" in text
        or type(exc).__name__ == "DistBackendError")


if __name__ == "__main__":
    main()
