"""Bearer-token auth (constant-time comparison) and the request body size limit."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from omnifuse.serving.errors import ApiError, error_body
from omnifuse.serving.metrics import ASGIApp, Message, Receive, Scope, Send

AUTH_FIX = "send the header Authorization: Bearer <key> with the server's API key"


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented key with the server's (``hmac.compare_digest``)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def make_auth(api_key: str) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that answers 401 unless the request carries ``Authorization: Bearer api_key``.

    It also declares the bearer scheme in the OpenAPI schema, so ``/docs`` has an "Authorize" button.
    """
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="the server's API key (--api-key / OMNIFUSE_API_KEY)")

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise ApiError(401, "missing API key: this server needs an Authorization: Bearer header",
                           fix=AUTH_FIX, headers=challenge)
        if not key_matches(credentials.credentials, api_key):
            raise ApiError(401, "wrong API key", fix=AUTH_FIX, headers=challenge)

    return check


class BodyTooLarge(ApiError):
    """A request body over the limit (413)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        size_text = f"{size} bytes" if size is not None else "more"
        super().__init__(413, f"the request body is {size_text}, over the server's limit of {limit} bytes",
                         fix="send fewer rows or smaller files per request, or start the server with a "
                         "larger --max-body-mb")


class BodyLimitMiddleware:
    """ASGI middleware refusing bodies over ``max_bytes``: by ``Content-Length`` before reading anything,
    and by counting while reading (for chunked bodies)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers 413 early, or passes on a ``receive`` that raises BodyTooLarge past the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_error(send, BodyTooLarge(self.max_bytes, declared))
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, exc: ApiError) -> None:
    import json

    body = json.dumps(error_body(exc.message, exc.row, exc.column, exc.fix)).encode()
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
