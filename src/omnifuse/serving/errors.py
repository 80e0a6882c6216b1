"""The API's one error shape, and the exception handlers that turn every failure into it.

Every error answer is ``{"error": {"message", "row", "column", "fix"}}``: 400 for a malformed body, a
wrong type or an undecodable file, 401 for auth, 413 for a body or file that is too large, 422 for a
missing column or a schema violation, 503 before the model is ready, 504 for a timeout. Bad input never
gets a 500: omnifuse's own errors are mapped here, with the row and column where they are known.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omnifuse.errors import BadRowError, BadValueError, DataError, OmnifuseError

log = logging.getLogger("omnifuse.serving")
_TABLE_ADVICE = re.compile(r"[;,]?\s*or set data\.on_bad_row: skip.*$")


class ApiError(Exception):
    """An error answered with ``status`` and the contract's JSON error.

    Args:
        status: the HTTP status (4xx or 503/504).
        message: what is wrong, naming the value.
        row: the row of the request it concerns (0-based), if any.
        column: the column it concerns, if any.
        fix: what the caller can do about it.
        headers: extra response headers (``WWW-Authenticate`` for 401).
    """

    def __init__(
        self,
        status: int,
        message: str,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.row, self.column, self.fix = status, message, row, column, fix
        self.headers = headers


def error_body(message: str, row: int | None = None, column: str | None = None,
               fix: str | None = None) -> dict[str, Any]:
    """The contract's error object."""
    return {"error": {"message": message, "row": row, "column": column, "fix": fix}}


def error_response(exc: ApiError) -> JSONResponse:
    """The JSON response of an ApiError."""
    return JSONResponse(error_body(exc.message, exc.row, exc.column, exc.fix), exc.status, exc.headers)


def from_omnifuse(exc: OmnifuseError) -> ApiError:
    """Maps an omnifuse error raised while preparing rows to an ApiError (row/column kept).

    BadRowError and BadValueError (an unusable cell) are 400; DataError (a missing column, no rows) is
    422; any other OmnifuseError is 400.
    """
    if isinstance(exc, BadRowError):
        message = f"column {exc.column!r} row {exc.row}: {exc.reason}"
        return ApiError(400, message, exc.row, exc.column, api_fix(exc.fix))
    if isinstance(exc, BadValueError):
        return ApiError(400, exc.reason, None, exc.column, api_fix(exc.fix))
    if isinstance(exc, DataError):
        return ApiError(422, str(exc))
    return ApiError(400, str(exc))


def api_fix(fix: str) -> str | None:
    """A row error's fix without the table-only advice (``data.on_bad_row: skip`` means nothing here)."""
    return _TABLE_ADVICE.sub("", fix).strip() or None


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _omnifuse_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OmnifuseError)
    return error_response(from_omnifuse(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return error_response(ApiError(422, message, fix="see /docs for the expected request"))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    fixes = {404: "see /docs for the routes", 405: "see /docs for the methods of each route"}
    headers = dict(exc.headers) if exc.headers else None
    return error_response(ApiError(exc.status_code, str(exc.detail), fix=fixes.get(exc.status_code),
                                   headers=headers))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, f"internal error ({type(exc).__name__}); see the server log",
                                   fix="report it with the request that caused it"))


def install_handlers(app: FastAPI) -> None:
    """Registers the handlers that give every error the contract's JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OmnifuseError, _omnifuse_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
