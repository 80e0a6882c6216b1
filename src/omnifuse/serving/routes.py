"""The HTTP routes and the OpenAPI schema generated from the model's columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from omnifuse.serving.errors import ApiError, install_handlers
from omnifuse.serving.metrics import CONTENT_TYPE
from omnifuse.serving.schema import (
    ErrorResponse,
    ModelInfo,
    SearchRequest,
    SearchResponse,
    Status,
)
from omnifuse.serving.security import make_auth

if TYPE_CHECKING:
    from omnifuse.serving.app import ServerState

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "malformed body, wrong type or undecodable file",
        401: "missing or wrong API key",
        413: "body or file too large",
        422: "missing column or schema violation",
        503: "the model is not ready yet",
        504: "timeout",
    }.items()
}
MODEL_ROUTES = ("/v1/predict", "/v1/explain", "/v1/search")


def _body_spec(json_ref: str, form: dict[str, Any] | None) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{json_ref}"}}}
    if form is not None:
        content["multipart/form-data"] = {"schema": form}
    return {"requestBody": {"required": True, "content": content}}


def add_routes(app: FastAPI, state: ServerState, api_key: str | None, static_dir: Path) -> None:
    """Registers every route on ``app`` (``/v1/search`` only with an index) and the error handlers."""
    install_handlers(app)
    guarded = [Depends(make_auth(api_key))] if api_key else []
    form = state.models.form_schema

    @app.get("/health", response_model=Status, tags=["status"])
    async def health() -> Any:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", response_model=Status, responses={503: ERRORS[503]}, tags=["status"])
    async def ready() -> Any:
        """Readiness: 200 once the model is loaded and warmed up, 503 before."""
        if not state.ready:
            raise ApiError(503, "the model is still warming up", fix="retry in a moment")
        return {"status": "ready"}

    @app.get("/v1/model", response_model=ModelInfo, dependencies=guarded, responses={401: ERRORS[401]},
             tags=["model"])
    async def describe() -> Any:
        """The model: task, classes, input columns with their types, training metrics."""
        return JSONResponse(state.info)

    model_errors = {code: ERRORS[code] for code in ERRORS}

    @app.post("/v1/predict", response_model=state.models.predict_response, dependencies=guarded,
              responses=model_errors, openapi_extra=_body_spec("PredictRequest", form), tags=["model"])
    async def predict(request: Request) -> Any:
        """Predicts rows: JSON ``{"rows": [...]}`` or a multipart form with one row."""
        return await state.answer(lambda: state.predict(request))

    @app.post("/v1/explain", response_model=state.models.explain_response, dependencies=guarded,
              responses=model_errors, openapi_extra=_body_spec("PredictRequest", form), tags=["model"])
    async def explain(request: Request) -> Any:
        """Per model input: fusion weight and the change in the predicted score when it is removed."""
        return await state.answer(lambda: state.explain(request))

    if state.index is not None:
        @app.post("/v1/search", response_model=SearchResponse, dependencies=guarded, responses=model_errors,
                  openapi_extra=_body_spec("SearchRequest", None), tags=["search"])
        async def search(request: Request) -> Any:
            """Nearest neighbours of a text, image or audio query in the loaded index."""
            return await state.answer(lambda: state.search(request))

    @app.get("/metrics", dependencies=guarded, response_class=PlainTextResponse,
             responses={401: ERRORS[401]}, tags=["status"])
    async def metrics() -> Response:
        """Prometheus text format: requests, latency, batch sizes, errors."""
        return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)

    _add_page(app, static_dir)


def _add_page(app: FastAPI, static_dir: Path) -> None:
    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = static_dir / "index.html"
        if not index.is_file():
            raise ApiError(404, "this installation has no web page", fix="use the API, see /docs")
        return FileResponse(index, media_type="text/html")


def build_openapi(app: FastAPI, state: ServerState) -> dict[str, Any]:
    """The OpenAPI schema, with the request models generated from the model's columns as components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models = state.models
    for model in (models.predict_request, SearchRequest):
        body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    app.openapi_schema = schema
    return schema
