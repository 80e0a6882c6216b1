"""CLI commands: export (``omnifuse export --model DIR --format onnx --out FILE.onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FORMATS = ("onnx",)


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command("export")(export)


def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder written by `omnifuse train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write (DIR/model.onnx is "
                                      "what `omnifuse.load(DIR, backend='onnx')` picks up).")],
    format: Annotated[str, typer.Option("--format", "-f", help="Export format: onnx.")] = "onnx",  # noqa: A002
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: 18).")] = None,
) -> None:
    """Export a model (encoders + fusion + head, on preprocessed tensors) and check it against torch."""
    from rich.console import Console

    from omnifuse.errors import ConfigError
    from omnifuse.export.onnx import DEFAULT_OPSET, PARITY_ATOL, export_onnx, sidecar_path

    if format not in FORMATS:
        raise ConfigError([f"--format {format!r} is not supported; expected one of {', '.join(FORMATS)}"])
    console = Console(stderr=True)
    with console.status(f"Exporting {model} to ONNX (tracing takes a few seconds to a minute)..."):
        signature = export_onnx(model, out, opset=opset or DEFAULT_OPSET)
    size = out.stat().st_size / 2**20
    console.print(
        f"[green]Wrote {out}[/green] ({size:.1f} MiB, opset {signature.opset}, "
        f"{signature.exporter} exporter, {len(signature.inputs)} tensor inputs + "
        f"{len(signature.presence)} presence masks) and its input description {sidecar_path(out)}"
    )
    console.print(
        f"Parity on a sample batch (other batch size than traced, one input missing per row in turn): "
        f"max |onnxruntime - torch| = {signature.parity:.2e} (limit {PARITY_ATOL:g})"
    )
    console.print(f"Use it: omnifuse.load({str(model)!r}, backend='onnx'" + (
        ")" if out.resolve() == (model / "model.onnx").resolve() else f", onnx_path={str(out)!r})"))
