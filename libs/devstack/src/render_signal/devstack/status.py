"""``render-signal status``: wait for the stack's heartbeats, then print them as a table.

The data comes from the heartbeat and stream-status readers of
``render_signal.common`` (the gateway's status API reads the same); this
module only gathers, waits and renders.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from render_signal.common.heartbeat import read_heartbeats
from render_signal.common.keys import Keys
from render_signal.common.redisclient import create_redis
from render_signal.common.status import gather_streams

__all__ = ["gather_status", "render_status", "wait_for_status"]


async def gather_status(redis: Redis, prefix: str) -> dict[str, Any]:
    """Heartbeats (with their age) and stream backlog, as plain JSON-able data."""
    keys = Keys(prefix)
    now = time.time()
    beats = await read_heartbeats(redis, keys)
    return {
        "checked_at": now,
        "services": [{**msgspec.to_builtins(b), "age_s": round(now - b.ts, 1)} for b in beats],
        "streams": msgspec.to_builtins(await gather_streams(redis, keys)),
    }


async def wait_for_status(
    url: str, prefix: str, expected: tuple[str, ...], wait_s: float
) -> dict[str, Any]:
    """The stack's status once every ``expected`` service beats, or as it is after ``wait_s``.

    Not a failure at the deadline: the caller shows who is down.
    """
    redis = create_redis(url)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            status = await gather_status(redis, prefix)
            alive = {s["service"] for s in status["services"]}
            if set(expected) <= alive or time.monotonic() >= deadline:
                return status
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()


def render_status(status: dict[str, Any], expected: tuple[str, ...]) -> str:
    """Human-readable table of :func:`gather_status`'s result."""
    lines = ["SERVICE   INSTANCE                       PID      AGE   STATE"]
    alive = {s["service"] for s in status["services"]}
    for record in status["services"]:
        lines.append(
            f"{record['service']:<9} {str(record.get('instance', ''))[:30]:<30} "
            f"{record.get('pid', ''):<8} {record['age_s']:>4}s alive"
        )
    for name in expected:
        if name not in alive:
            lines.append(f"{name:<9} {'-':<30} {'-':<8} {'-':>5} DOWN (no heartbeat)")
    lines.append("")
    lines.append("STREAM           LENGTH  DLQ  GROUP     PENDING  LAG")
    for stream in status["streams"]:
        groups = stream["groups"] or [{"name": "-", "pending": "-", "lag": "-"}]
        for group in groups:
            lag = "?" if group["lag"] is None else group["lag"]
            lines.append(
                f"{stream['stream']:<16} {stream['length']:>6} {stream['dead_letters']:>4}  "
                f"{group['name']:<9} {group['pending']:>7}  {lag}"
            )
    return "\n".join(lines)
