"""FastAPI application factory for the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from render_signal.common.heartbeat import Heartbeat
from render_signal.common.redisclient import create_redis
from render_signal.gateway.settings import GatewaySettings

__all__ = ["create_app"]


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway app; Redis and background tasks live in the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings.common.redis_url)
        stop = asyncio.Event()
        heartbeat = Heartbeat(
            redis,
            prefix=settings.common.key_prefix,
            service="gateway",
            instance=settings.common.instance,
            interval_s=settings.common.heartbeat_interval_s,
        )
        app.state.redis = redis
        app.state.settings = settings
        beat = asyncio.create_task(heartbeat.run(stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(beat, timeout=2)
            await redis.aclose()

    app = FastAPI(title="render-signal gateway", version="0.1.0", lifespan=lifespan)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/api/ping", methods=["GET", "HEAD"], tags=["ops"])
    async def ping() -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"status": "pong", "timestamp_utc": stamp}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
