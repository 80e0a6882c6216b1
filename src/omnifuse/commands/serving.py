"""CLI commands: serving (``omnifuse serve``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor
    from omnifuse.retrieval.index import VectorIndex

MB = 1024 * 1024


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command("serve")(serve)


def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder written by `omnifuse train`.")],
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        envvar="OMNIFUSE_API_KEY", help="Require `Authorization: Bearer KEY` on /v1/* and /metrics.")] = None,
    max_batch: Annotated[int, typer.Option(help="Most rows per model forward (1: no micro-batching).")] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests.")] = 5.0,
    allow_files: Annotated[Path | None, typer.Option(
        help="Accept media paths that resolve inside this folder (default: only base64 / data URLs).",
    )] = None,
    index: Annotated[Path | None, typer.Option(help="Search index folder: enables /v1/search.")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB (413 above).")] = 32.0,
    max_file_mb: Annotated[float, typer.Option(help="Largest media file, in MiB (413 above).")] = 16.0,
    max_pixels: Annotated[int | None, typer.Option(
        help="Largest image, width x height (413 above); default: the model's own limit.")] = None,
    timeout_s: Annotated[float, typer.Option(help="Most seconds per request (504 after).")] = 30.0,
    prep_threads: Annotated[int | None, typer.Option(
        help="Threads decoding and preprocessing requests (default: CPU count, 2 to 8).")] = None,
    torch_threads: Annotated[int | None, typer.Option(
        help="torch intra-op threads for the model (default: torch's).")] = None,
    graceful_s: Annotated[int, typer.Option(
        help="On Ctrl-C / SIGTERM, seconds in-flight requests get to finish.")] = 30,
) -> None:
    """Serve a model over HTTP: /v1/predict, /v1/explain, /v1/model, /metrics, /docs and a web page at /."""
    from rich.console import Console

    from omnifuse.serving import require_serving

    require_serving()
    import uvicorn

    from omnifuse.inference.predictor import load
    from omnifuse.serving import create_app

    console = Console(stderr=True)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    predictor = load(model)
    if predictor.task.name == "generation":  # OpenAI's chat API
        from omnifuse.serving.chat_app import create_chat_app

        chat = create_chat_app(predictor, api_key=api_key or None, allow_files=allow_files,
                               max_file_bytes=int(max_file_mb * MB), timeout_s=timeout_s,
                               max_batch=max_batch, max_wait_ms=max_wait_ms)
        console.print(f"[green]Serving {model}[/green] at http://{host}:{port}/v1/chat/completions "
                      "(OpenAI-compatible)" + (" with an API key" if api_key else ""))
        uvicorn.run(chat, host=host, port=port, timeout_graceful_shutdown=graceful_s, log_level="info",
                    access_log=False)
        return
    search_index = load_search_index(index, model, predictor) if index is not None else None
    app = create_app(
        predictor, api_key=api_key or None, max_batch=max_batch, max_wait_ms=max_wait_ms,
        allow_files=allow_files, max_body_bytes=int(max_body_mb * MB), max_file_bytes=int(max_file_mb * MB),
        max_pixels=max_pixels, timeout_s=timeout_s, index=search_index, prep_threads=prep_threads,
    )
    shown = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    console.print(f"[green]Serving {model}[/green] at {shown}/ (API docs: {shown}/docs)"
                  + (" with an API key" if api_key else ""))
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=graceful_s, log_level="info",
                access_log=False)


def load_search_index(folder: Path, model_dir: Path, predictor: Predictor) -> VectorIndex:
    """The search index of ``--index``, with its query model ready before the server starts.

    When the index was built with the served model (its recorded model folder is ``model_dir``), the
    index shares the already loaded ``predictor``; otherwise its own model is loaded now, so that a moved
    or deleted model folder fails at startup rather than on every search.

    Raises:
        ModelDirError: the index folder is unreadable, or its model folder is gone.
        DataError: the index was built from raw vectors (it cannot embed a text/image/audio query).
    """
    from omnifuse.retrieval import load_index

    search_index = load_index(folder)
    recorded = search_index.source.model
    if recorded is not None and _same_folder(Path(recorded), model_dir):
        search_index.model = predictor
    else:
        search_index.query_model()  # loads the recorded model now (or raises its clear error)
    return search_index


def _same_folder(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one.expanduser(), other.expanduser())
    except (OSError, ValueError):
        return one.expanduser().resolve() == other.expanduser().resolve()
