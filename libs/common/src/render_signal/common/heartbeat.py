"""Heartbeat: a ``HEARTBEAT: alive (...)`` log line plus a Redis key with a TTL.

The key ``<prefix>heartbeat:<service>:<instance>`` holds a JSON status and
expires after three intervals, so a dead process disappears from
``render-signal status`` and the dashboard by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["HEARTBEAT_PATTERN", "Heartbeat", "read_heartbeats"]

logger = logging.getLogger(__name__)

HEARTBEAT_PATTERN = "heartbeat:*"


class Heartbeat:
    """Periodic liveness record for one service instance."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        service: str,
        instance: str,
        interval_s: float,
        info: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.redis = redis
        self.key = f"{prefix}heartbeat:{service}:{instance}"
        self.service = service
        self.instance = instance
        self.interval_s = interval_s
        self.info = info or dict
        self.started_at = time.time()
        # The key must outlive a couple of missed beats but not a dead process for long.
        self.ttl_ms = int(max(self.interval_s * 3, 5.0) * 1000)

    async def beat(self) -> None:
        details = self.info()
        record = {
            "service": self.service,
            "instance": self.instance,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "ts": time.time(),
            **details,
        }
        await self.redis.set(self.key, json.dumps(record, default=str), px=self.ttl_ms)
        summary = ", ".join(f"{k}={v}" for k, v in details.items())
        logger.info(
            "HEARTBEAT: alive (service=%s, instance=%s%s)",
            self.service,
            self.instance,
            f", {summary}" if summary else "",
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                logger.warning("HEARTBEAT: could not record (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.key)


async def read_heartbeats(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    """All live heartbeat records under ``prefix``."""
    records: list[dict[str, Any]] = []
    async for key in redis.scan_iter(match=f"{prefix}{HEARTBEAT_PATTERN}", count=200):
        raw = await redis.get(key)
        if raw:
            with contextlib.suppress(ValueError):
                records.append(json.loads(raw))
    records.sort(key=lambda r: (r.get("service", ""), r.get("instance", "")))
    return records
