"""The FastAPI app of a generation model: OpenAI's chat API (``serving.chat_api``), health and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response  # route annotations are read at runtime

from omnifuse.errors import OmnifuseError
from omnifuse.generation.chat import chat_row
from omnifuse.serving.chat_api import ChatService, openai_error, parse_chat_request
from omnifuse.serving.decode import Limits
from omnifuse.serving.errors import ApiError
from omnifuse.serving.security import key_matches

if TYPE_CHECKING:

    from omnifuse.inference.predictor import Predictor

log = logging.getLogger("omnifuse.serving")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_chat_app(predictor: Predictor, *, api_key: str | None = None, allow_files: Path | None = None,
                    max_file_bytes: int = 16 * 1024 * 1024, timeout_s: float = 120.0,
                    model_name: str | None = None, max_batch: int = 8, max_wait_ms: float = 10.0) -> FastAPI:
    """The OpenAI-compatible app serving a generation ``predictor`` (``omnifuse serve`` runs it).

    Args:
        api_key: when set, ``/v1/*`` needs ``Authorization: Bearer <api_key>`` (what OpenAI clients send).
        allow_files: a folder image URLs may be paths into; None accepts only data URLs.
        max_file_bytes: largest decoded image or audio (413 above).
        timeout_s: most seconds per answer (504 after).
        model_name: the name in ``/v1/models`` and answers (default: the model folder's name).
        max_batch / max_wait_ms: answers written together, and how long the first waits for others.
    """
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    name = model_name or (predictor.folder.name if predictor.folder is not None else "omnifuse")
    limits = Limits(max_file_bytes=max_file_bytes, allow_files=allow_files)
    service = ChatService(predictor, name, limits, timeout_s, max_batch, max_wait_ms / 1000.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.run(predictor.warm_up)
        service.batcher.start()
        service.ready = True
        yield
        await service.batcher.stop(timeout_s=5.0)
        service.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"omnifuse chat: {name}", lifespan=lifespan)
    app.state.chat = service
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    _add_routes(app, service, api_key)
    return app


def _add_routes(app: FastAPI, service: ChatService, api_key: str | None) -> None:
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return openai_error(exc.status, exc.message, exc.fix)

    @app.exception_handler(OmnifuseError)
    async def bad_input(request: Request, exc: OmnifuseError) -> Response:  # a bad row, message or medium
        return openai_error(400, str(exc))

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        """The chat page (history, image and audio attachments, the streamed answer)."""
        html = STATIC_DIR / "chat.html"
        if not html.is_file():
            raise ApiError(404, "this installation has no chat page", fix="use the API: /v1/chat/completions")
        return FileResponse(html, media_type="text/html")

    @app.get("/ready")
    async def ready() -> Any:
        if not service.ready:
            raise ApiError(503, "the model is still warming up", fix="retry in a moment")
        return {"status": "ready"}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        _check_key(request, api_key)
        return {"object": "list", "data": [{"id": service.model_name, "object": "model", "created": 0,
                                            "owned_by": "omnifuse"}]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        _check_key(request, api_key)
        service.batcher.expect(1)  # a batch forming now waits (max_wait_ms) for this one
        try:
            chat = parse_chat_request(await request.body(), service.model_name, service.limits)
            answers = None if chat.stream else service.answers(chat)
        finally:
            service.batcher.expect(-1)
        if chat.stream:
            if chat.choices != 1:
                raise ApiError(400, "'n' must be 1 with 'stream': true")
            row = chat_row(service.predictor.config, chat.messages, chat.media)
            await service.run(service.predictor.prepare, row, service.base)  # bad: a 400, not a cut stream
            return StreamingResponse(service.events(chat), media_type="text/event-stream")
        try:
            assert answers is not None
            texts = await asyncio.wait_for(service.batcher.submit(answers), service.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"the answer took more than {service.timeout_s:g} s",
                           fix="ask for fewer max_tokens") from None
        return JSONResponse(service.completion(chat, texts))


def _check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get("authorization", "")
    if not given.lower().startswith("bearer ") or not key_matches(given[7:].strip(), api_key):
        raise ApiError(401, "missing or wrong API key", fix="send Authorization: Bearer <the server's key>")
