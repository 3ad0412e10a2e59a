"""FastAPI application factory for the gateway."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from render_signal.gateway import (
    auth,
    checks,
    configapi,
    configtransfer,
    dashboard,
    deadletters,
    deploy,
    emails,
    ingress,
    openapi,
    ops,
)
from render_signal.gateway.context import Context, GatewayContext
from render_signal.gateway.errors import ApiError, install_error_handlers
from render_signal.gateway.security import ProxyPolicy, SecurityMiddleware, bearer_matches
from render_signal.gateway.settings import GatewaySettings

__all__ = ["create_app"]


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway app; Redis and background tasks live in the lifespan."""
    ctx = GatewayContext(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.open()
        try:
            yield
        finally:
            await ctx.close()

    # Outside dev mode the schema and its pages need a session (openapi.install).
    public_docs = settings.common.dev_mode
    app = FastAPI(
        title="render-signal gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if public_docs else None,
        redoc_url="/redoc" if public_docs else None,
        openapi_url="/openapi.json" if public_docs else None,
    )
    app.state.context = ctx
    install_error_handlers(app)
    app.add_middleware(
        SecurityMiddleware,
        proxies=ProxyPolicy(settings.trusted_proxies, settings.trusted_proxy_hops),
    )

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/ping", tags=["ops"])
    async def ping() -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"status": "pong", "timestamp_utc": stamp}

    @app.head("/api/ping", tags=["ops"])
    async def ping_head() -> Response:
        return Response(status_code=200)

    @app.get("/ready", tags=["ops"])
    async def ready(ctx: Context) -> dict[str, Any]:
        """200 when Redis answers, else 503."""
        try:
            await ctx.redis.ping()
        except Exception as exc:
            raise ApiError(503, "Service unavailable") from exc
        return {"status": "ready"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Bearer ``METRICS_TOKEN``; open in dev mode without one; else 404 here (the
        internal ``GATEWAY_METRICS_PORT`` serves them)."""
        if settings.metrics_token:
            if not bearer_matches(request, settings.metrics_token):
                raise ApiError(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
        elif not settings.common.dev_mode:
            raise ApiError(404, "Not Found")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for area in (
        auth,
        ingress,
        configapi,
        configtransfer,
        ops,
        emails,
        checks,
        deadletters,
        deploy,
    ):
        app.include_router(area.router)
    dashboard.install(app)
    openapi.install(app, protected=not public_docs)
    return app
