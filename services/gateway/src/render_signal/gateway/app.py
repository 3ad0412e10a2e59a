"""FastAPI application factory for the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from render_signal.common.configstore import ConfigStore
from render_signal.common.heartbeat import Heartbeat
from render_signal.common.redisclient import create_redis
from render_signal.gateway import auth
from render_signal.gateway.errors import ApiError, install_error_handlers
from render_signal.gateway.magic import MagicLinkStore
from render_signal.gateway.security import SecurityMiddleware
from render_signal.gateway.sessions import PageSession, SessionStore
from render_signal.gateway.settings import GatewaySettings
from render_signal.gateway.throttle import LoginThrottle

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

#: Area routers, in this package; a missing one is skipped (built in parallel).
AREA_MODULES = ("ingress", "configapi", "ops", "deadletters", "transfer", "deploy")


def _optional_router(module: str) -> APIRouter | None:
    name = f"render_signal.gateway.{module}"
    try:
        loaded = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise
    router = getattr(loaded, "router", None)
    return router if isinstance(router, APIRouter) else None


def _install_dashboard(app: FastAPI) -> bool:
    """The UI engineer's dashboard module: ``install(app)`` if present, else its router."""
    name = "render_signal.gateway.dashboard"
    try:
        dashboard = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        dashboard = None
    install = getattr(dashboard, "install", None)
    if callable(install):
        install(app)
        return True
    router = getattr(dashboard, "router", None)
    if isinstance(router, APIRouter):
        app.include_router(router)
    static_dir = Path(__file__).parent / "static"
    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return isinstance(router, APIRouter)


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway app; Redis and background tasks live in the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings.common.redis_url)
        prefix = settings.common.key_prefix
        stop = asyncio.Event()
        heartbeat = Heartbeat(
            redis,
            prefix=prefix,
            service="gateway",
            instance=settings.common.instance,
            interval_s=settings.common.heartbeat_interval_s,
        )
        app.state.redis = redis
        app.state.settings = settings
        app.state.config_store = ConfigStore(redis, prefix)
        app.state.sessions = SessionStore(
            redis, prefix, idle_s=settings.session_idle_s, absolute_s=settings.session_absolute_s
        )
        app.state.magic_links = MagicLinkStore(redis, prefix, ttl_s=settings.magic_link_ttl_s)
        app.state.login_throttle = LoginThrottle(
            redis,
            prefix,
            max_failures=settings.login_max_failures,
            lockout_s=settings.login_lockout_s,
        )
        app.state.background = set()
        beat = asyncio.create_task(heartbeat.run(stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(beat, timeout=2)
            await redis.aclose()

    app = FastAPI(title="render-signal gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(SecurityMiddleware, trusted_proxies=settings.trusted_proxies)

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
    async def ready(request: Request) -> dict[str, Any]:
        """200 when Redis answers, else 503."""
        try:
            await request.app.state.redis.ping()
        except Exception as exc:
            raise ApiError(503, "Service unavailable") from exc
        return {"status": "ready"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.include_router(auth.router)
    for module in AREA_MODULES:
        router = _optional_router(module)
        if router is not None:
            app.include_router(router)

    if not _install_dashboard(app):

        @app.get("/", response_class=HTMLResponse, tags=["dashboard"])
        async def home(session: PageSession) -> HTMLResponse:
            """Placeholder until the dashboard router is present."""
            return HTMLResponse("<!doctype html><title>render-signal</title><p>Signed in.</p>")

    return app
