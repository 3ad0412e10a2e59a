"""Stack status from Redis: service heartbeats and stream backlog.

Used by ``render-signal status`` (and available to the gateway's status API):
which services are alive (heartbeat key present), and for each stream its
length, and per consumer group the pending count and lag.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from render_signal.common.heartbeat import read_heartbeats
from render_signal.common.keys import ALL_STREAMS
from render_signal.common.streams import dlq_key

__all__ = ["gather_status", "render_status"]


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


async def gather_status(redis: Redis, prefix: str) -> dict[str, Any]:
    """Heartbeats and stream statistics under ``prefix``."""
    now = time.time()
    services = [
        {**record, "age_s": round(now - float(record.get("ts", 0)), 1)}
        for record in await read_heartbeats(redis, prefix)
    ]
    streams: list[dict[str, Any]] = []
    for name in ALL_STREAMS:
        key = f"{prefix}{name}"
        length = int(await redis.xlen(key))
        groups: list[dict[str, Any]] = []
        try:
            raw_groups: Any = await redis.xinfo_groups(key)
        except ResponseError:  # stream does not exist yet
            raw_groups = []
        for group in raw_groups:
            info = {_text(k): _text(v) for k, v in group.items()}
            groups.append(
                {
                    "group": info.get("name"),
                    "pending": int(info.get("pending") or 0),
                    # `lag` exists on Redis >= 7; None means "unknown" on 6.2.
                    "lag": None if info.get("lag") is None else int(info["lag"]),
                    "consumers": int(info.get("consumers") or 0),
                }
            )
        streams.append(
            {
                "stream": name,
                "length": length,
                "dead_letters": int(await redis.xlen(dlq_key(key))),
                "groups": groups,
            }
        )
    return {"checked_at": now, "services": services, "streams": streams}


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
        groups = stream["groups"] or [{"group": "-", "pending": "-", "lag": "-"}]
        for group in groups:
            lag = "?" if group["lag"] is None else group["lag"]
            lines.append(
                f"{stream['stream']:<16} {stream['length']:>6} {stream['dead_letters']:>4}  "
                f"{group['group']:<9} {group['pending']:>7}  {lag}"
            )
    return "\n".join(lines)
