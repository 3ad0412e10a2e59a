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

__all__ = ["gather_status"]


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
