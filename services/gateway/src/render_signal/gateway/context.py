"""The gateway's shared state, opened in the lifespan, and its typed route dependencies.

Routes never read ``request.app.state``: they declare what they need
(``Settings``, ``RedisClient``, ``Store``, ``Context``) and FastAPI hands it
over, typed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.appliedconfig import AppliedConfigReporter
from render_signal.common.configdocs import RoutingRules, RuntimeFlags
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.heartbeat import Heartbeat
from render_signal.common.opsserver import OpsServer
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import EXIT_MARGIN_S, HAND_BACK_SHARE
from render_signal.common.timeline import TimelineWriter
from render_signal.gateway.magic import MagicLinkStore
from render_signal.gateway.sessions import SessionStore
from render_signal.gateway.settings import GatewaySettings
from render_signal.gateway.throttle import IngressThrottle, LoginThrottle

__all__ = [
    "Context",
    "GatewayContext",
    "RedisClient",
    "Settings",
    "Store",
    "app_context",
    "context",
]


class GatewayContext:
    """Everything the routes share; Redis-backed parts exist between open() and close()."""

    redis: Redis
    store: ConfigStore
    watcher: ConfigWatcher
    sessions: SessionStore
    magic_links: MagicLinkStore
    login_throttle: LoginThrottle
    timeline: TimelineWriter
    ingress_throttle: IngressThrottle

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.keys = settings.common.keys
        #: Where outbound calls (deploy) and saved targets may point.
        self.outbound: OutboundPolicy = settings.common.outbound_policy()
        #: Fire-and-forget tasks (deploy command) kept referenced until done.
        self.background: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: /metrics, /health, /ready on GATEWAY_METRICS_PORT (internal network), if set.
        self.ops: OpsServer | None = None

    async def open(self) -> None:
        settings = self.settings
        self.redis = create_redis(settings.common.redis_url)
        self.store = ConfigStore(self.redis, self.keys)
        self.timeline = TimelineWriter.configured(self.redis, settings.common)
        self.watcher = ConfigWatcher(self.store)
        self.sessions = SessionStore(
            self.redis,
            self.keys,
            idle_s=settings.session_idle_s,
            absolute_s=settings.session_absolute_s,
        )
        self.magic_links = MagicLinkStore(self.redis, self.keys, ttl_s=settings.magic_link_ttl_s)
        self.login_throttle = LoginThrottle(
            self.redis,
            self.keys,
            max_failures=settings.login_max_failures,
            lockout_s=settings.login_lockout_s,
        )
        self.ingress_throttle = IngressThrottle(
            self.redis,
            self.keys,
            max_failures=settings.ingress_max_failures,
            lockout_s=settings.ingress_lockout_s,
        )
        heartbeat = Heartbeat(
            self.redis,
            self.keys,
            service="gateway",
            instance=settings.common.instance,
            interval_s=settings.common.heartbeat_interval_s,
        )
        reporter = AppliedConfigReporter(
            self.watcher,
            service="gateway",
            instance=settings.common.instance,
            documents=(RuntimeFlags, RoutingRules),
            env={},
            interval_s=settings.common.heartbeat_interval_s,
        )
        for component in (heartbeat.run, self.watcher.listen, reporter.run):
            self._tasks.append(asyncio.create_task(component(self._stop)))
        if settings.internal_metrics_port:
            self.ops = OpsServer(
                settings.common.metrics_host, settings.internal_metrics_port, self._ready
            )
            await self.ops.start()

    async def _ready(self) -> tuple[bool, dict[str, object]]:
        try:
            await asyncio.wait_for(self.redis.ping(), timeout=2)
        except (RedisError, OSError, TimeoutError) as exc:
            return False, {"redis": type(exc).__name__}
        return True, {}

    async def close(self) -> None:
        """Stop the background tasks, then close Redis, in what uvicorn's graceful
        wait leaves of DRAIN_TIMEOUT_SECONDS (see ``main``): each step is bounded,
        so the whole stop fits the drain even when every Redis call hangs."""
        budget = max(0.2, self.settings.common.drain_timeout_s * HAND_BACK_SHARE - EXIT_MARGIN_S)
        if self.ops is not None:
            await self.ops.close()
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), min(3.0, budget * 0.8)
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), budget * 0.2)


def app_context(app: FastAPI) -> GatewayContext:
    """The app's :class:`GatewayContext` (the one place ``app.state`` is read)."""
    found: GatewayContext = app.state.context
    return found


def context(request: Request) -> GatewayContext:
    """The :class:`GatewayContext` of the app serving ``request``."""
    return app_context(request.app)


# The dependencies are coroutines on purpose: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop per dependency per request (issue
# 16: ``run_in_threadpool`` was the heaviest frame of an ingress POST).
async def _context(request: Request) -> GatewayContext:
    return app_context(request.app)


async def _settings(ctx: Annotated[GatewayContext, Depends(_context)]) -> GatewaySettings:
    return ctx.settings


async def _redis(ctx: Annotated[GatewayContext, Depends(_context)]) -> Redis:
    return ctx.redis


async def _store(ctx: Annotated[GatewayContext, Depends(_context)]) -> ConfigStore:
    return ctx.store


Context = Annotated[GatewayContext, Depends(_context)]
Settings = Annotated[GatewaySettings, Depends(_settings)]
RedisClient = Annotated[Redis, Depends(_redis)]
Store = Annotated[ConfigStore, Depends(_store)]
