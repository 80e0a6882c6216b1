"""The FastAPI app: a thin HTTP shell over a Predictor, with micro-batching, limits, auth and metrics.

See the README's "Serving" section for the API. ``create_app`` wires the pieces:
``decode`` (bodies -> rows), ``Predictor.prepare`` on a pool of threads (one request at a time, so that a
bad row fails only its own request), ``batching.MicroBatcher`` (one forward for many requests on the
single model thread), ``service`` (answers), ``errors`` (the JSON error), ``metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from omnifuse.serving.batching import MicroBatcher
from omnifuse.serving.decode import Limits, input_columns, parse_form_row, parse_json_rows, parse_search
from omnifuse.serving.errors import ApiError
from omnifuse.serving.metrics import Metrics
from omnifuse.serving.schema import build_models
from omnifuse.serving.service import (
    categories_of,
    explanation_rows,
    is_contrastive,
    model_info,
    prediction_rows,
    search_results,
    warmup,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from omnifuse.data.collate import Example
    from omnifuse.inference.predictor import Predictor

T = TypeVar("T")
STATIC_DIR = Path(__file__).resolve().parent / "static"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class ServerState:
    """What the routes share: the predictor, executors, batcher, limits, metrics and readiness.

    Args:
        predictor: the loaded model.
        limits: media limits.
        max_batch: most rows per forward.
        max_wait_s: how long a batch waits for more requests.
        timeout_s: most seconds per request.
        prep_threads: threads that decode and preprocess requests.
        index: a search index (``omnifuse.retrieval.load_index``) or None.
    """

    def __init__(self, predictor: Predictor, limits: Limits, max_batch: int, max_wait_s: float,
                 timeout_s: float, prep_threads: int, index: Any = None) -> None:
        self.predictor, self.limits, self.timeout_s, self.index = predictor, limits, timeout_s, index
        self.columns = input_columns(predictor.config)
        self.metrics = Metrics()
        self.model_pool = ThreadPoolExecutor(1, thread_name_prefix="omnifuse-model")
        self.prep_pool = ThreadPoolExecutor(prep_threads, thread_name_prefix="omnifuse-prep")
        run = functools.partial(prediction_rows, predictor)
        self.batcher = MicroBatcher(run, self.model_pool, max_batch, max_wait_s, self.metrics.observe_batch)
        self.info = model_info(predictor, search=index is not None)
        classes = [str(c) for c in predictor.classes]
        self.models = build_models(predictor.config, categories_of(predictor), classes)
        self.ready = False
        self.contrastive = is_contrastive(predictor)

    async def in_pool(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        """Runs ``fn(*args)`` on a worker thread, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    async def warm(self) -> None:
        """Warms the model up on the model thread, then marks the server ready."""
        await self.in_pool(self.model_pool, warmup, self.predictor)
        self.ready = True

    async def read_rows(self, request: Request) -> list[dict[str, Any]]:
        """The request's rows (JSON body or a one-row form), media decoded to bytes."""
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(FORM_TYPES):
            async with request.form(max_files=len(self.columns) + 1, max_fields=len(self.columns) + 16,
                                    max_part_size=self.limits.max_file_bytes * 2) as form:
                return await self.in_pool(self.prep_pool, parse_form_row, form, self.columns, self.limits)
        body = await request.body()
        return await self.in_pool(self.prep_pool, parse_json_rows, body, self.columns, self.limits)

    async def prepare(self, request: Request) -> list[Example]:
        """Reads and preprocesses one request's rows (row errors name the request's own rows)."""
        rows = await self.read_rows(request)
        base = self.limits.allow_files or Path.cwd()
        return await self.in_pool(self.prep_pool, self.predictor.prepare, rows, base, False)

    def refuse_contrastive(self, route: str) -> None:
        """Raises ApiError 422 on ``/v1/predict`` and ``/v1/explain`` of a contrastive (embedding) model."""
        if self.contrastive:
            where = ("POST /v1/search" if self.index is not None
                     else "/v1/search (start the server with --index DIR, built by `omnifuse index`)")
            raise ApiError(422, f"this is a contrastive (embedding) model: it has no {route} answer, it only "
                           "embeds", fix=f"search with it instead: {where}")

    async def predict(self, request: Request) -> dict[str, Any]:
        """``/v1/predict``: prepared here, predicted in a micro-batch with other requests."""
        self.refuse_contrastive("/v1/predict")
        self.batcher.expect(1)
        try:
            examples = await self.prepare(request)
        finally:
            self.batcher.expect(-1)
        return {"predictions": await self.batcher.submit(examples)}

    async def explain(self, request: Request) -> dict[str, Any]:
        """``/v1/explain``: prepared here, explained on the model thread."""
        self.refuse_contrastive("/v1/explain")
        examples = await self.prepare(request)
        rows = await self.in_pool(self.model_pool, explanation_rows, self.predictor, examples)
        return {"explanations": rows}

    async def search(self, request: Request) -> dict[str, Any]:
        """``/v1/search``: one query against the index, on the model thread."""
        query = await self.in_pool(self.prep_pool, parse_search, await request.body(), self.limits)
        frame = await self.in_pool(self.model_pool, functools.partial(self.index.search, **query))
        return {"results": search_results(frame)}

    async def answer(self, work: Callable[[], Awaitable[dict[str, Any]]]) -> Any:
        """Runs a model route: 503 before warm-up ends, 504 after ``timeout_s``."""
        from fastapi.responses import JSONResponse

        if not self.ready:
            raise ApiError(503, "the model is still loading", fix="retry when GET /ready answers 200")
        try:
            payload = await asyncio.wait_for(work(), self.timeout_s)
        except asyncio.TimeoutError:
            message = f"the request took longer than the server's timeout of {self.timeout_s:g} s"
            fix = "retry, send fewer rows, or start the server with a larger --timeout-s"
            raise ApiError(504, message, fix=fix) from None
        return JSONResponse(payload)

    def close(self) -> None:
        """Stops the worker threads (after the running call)."""
        self.model_pool.shutdown(wait=True)
        self.prep_pool.shutdown(wait=False, cancel_futures=True)


def create_app(
    predictor: Predictor,
    *,
    api_key: str | None = None,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    allow_files: Path | None = None,
    max_body_bytes: int = 32 * 1024 * 1024,
    max_file_bytes: int = 16 * 1024 * 1024,
    max_pixels: int | None = None,
    timeout_s: float = 30.0,
    index: Any = None,
    prep_threads: int | None = None,
) -> FastAPI:
    """Builds the HTTP app serving ``predictor`` (run it with uvicorn; ``omnifuse serve`` does).

    Args:
        predictor: a loaded model (``omnifuse.load(dir)``).
        api_key: when set, ``/v1/*`` and ``/metrics`` need ``Authorization: Bearer <api_key>``.
        max_batch: most rows per model forward; 1 turns micro-batching off.
        max_wait_ms: how long the first request of a batch waits for others.
        allow_files: a folder media paths may point into; None accepts only data URLs / base64.
        max_body_bytes: largest request body (413 above).
        max_file_bytes: largest decoded media file (413 above).
        max_pixels: largest image (width x height, 413 above); None: the model's own limit (400 above).
        timeout_s: most seconds per request (504 after).
        index: a search index with ``search(text=, image=, audio=, k=)``; enables ``/v1/search``.
        prep_threads: threads decoding and preprocessing requests (default: CPU count, 2 to 8).

    Returns:
        The FastAPI app; ``GET /ready`` answers 200 once the model is warmed up.

    Raises:
        ConfigError: a limit is not positive.
    """
    from fastapi import FastAPI

    from omnifuse.serving.metrics import MetricsMiddleware
    from omnifuse.serving.routes import add_routes, build_openapi
    from omnifuse.serving.security import BodyLimitMiddleware

    check_limits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes,
                 max_file_bytes=max_file_bytes, max_pixels=max_pixels, timeout_s=timeout_s)
    limits = Limits(None if allow_files is None else Path(allow_files), max_file_bytes, max_pixels)
    threads = prep_threads or min(8, max(2, os.cpu_count() or 2))
    state = ServerState(predictor, limits, max_batch, max_wait_ms / 1000.0, timeout_s, threads, index)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        warming = asyncio.get_running_loop().create_task(state.warm())
        try:
            yield
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await warming
            await state.batcher.stop()
            state.close()

    app = FastAPI(title=f"omnifuse: {state.info['name']}", version=state.info["version"], lifespan=lifespan,
                  description=_description(state))
    app.state.omnifuse = state
    add_routes(app, state, api_key, STATIC_DIR)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.openapi = functools.partial(build_openapi, app, state)  # type: ignore[method-assign]
    return app


def check_limits(**values: float | None) -> None:
    """Raises ConfigError listing every server limit that is not a positive number.

    ``max_wait_ms`` may be 0 (no waiting); ``max_pixels`` may be None (the model's own limit).
    """
    from omnifuse.errors import ConfigError

    problems = []
    for name, value in values.items():
        if value is None and name == "max_pixels":
            continue
        lowest = 0.0 if name == "max_wait_ms" else None
        if value is None or (value < lowest if lowest is not None else value <= 0):
            problems.append(f"{name} must be {'>= 0' if lowest is not None else '> 0'}, got {value!r}; "
                            "pass a positive value")
    if problems:
        raise ConfigError(problems)


def _description(state: ServerState) -> str:
    info = state.info
    columns = ", ".join(f"`{c['name']}` ({c['type']})" for c in info["columns"])
    if state.contrastive:
        return (f"A contrastive (embedding) model over {columns}: `/v1/predict` and `/v1/explain` answer "
                "422; search with `/v1/search` (the server needs `--index DIR`). Errors are "
                '`{"error": {"message", "row", "column", "fix"}}`.')
    return (f"Predicts `{info['label']}` ({info['task']}) from {columns}. Media columns take a "
            "`data:<mime>;base64,...` URL or raw base64 (paths only with `--allow-files`). Errors are "
            '`{"error": {"message", "row", "column", "fix"}}`.')
