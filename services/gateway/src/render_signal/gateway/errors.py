"""Error responses: every API error is ``{success: false, message}``, never a stack.

* :class:`ApiError` — an expected refusal (400/401/403/409/413/429/503) with a
  client-safe message.
* :class:`PageRedirect` — an HTML route that needs a login answers 303 instead.
* Anything else is logged with its traceback and answered 500
  ``Internal server error`` by :class:`~render_signal.gateway.security.SecurityMiddleware`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis.exceptions import RedisError
from render_signal.common.errors import RenderSignalError
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "PageRedirect", "install_error_handlers"]

logger = logging.getLogger(__name__)


class ApiError(RenderSignalError):
    """An expected error answered as JSON ``{success: false, message}``."""

    def __init__(
        self, status_code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


class PageRedirect(RenderSignalError):
    """An HTML route redirects (303) instead of answering an error."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def error_response(
    status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"success": False, "message": message}, status_code=status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that shape every error the gateway returns."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status_code, exc.message, exc.headers)

    @app.exception_handler(PageRedirect)
    async def _redirect(request: Request, exc: PageRedirect) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        text = str(first.get("msg", "invalid request"))
        return error_response(400, f"Invalid request: {where}: {text}" if where else text)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> Response:
        logger.warning("GATEWAY: Redis unavailable on %s: %s", request.url.path, type(exc).__name__)
        return error_response(503, "Service unavailable")
