"""Stream backlog as Redis reports it: length, dead letters, per-group pending and lag.

The one reader of stream status, used by the gateway's status API and by
``render-signal status``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from render_signal.common.keys import ALL_STREAMS, Keys
from render_signal.common.records import GroupStatus, StreamStatus

__all__ = ["gather_streams", "stream_status"]

#: On Redis 6.2 (no ``lag`` in XINFO GROUPS) lag is counted, up to this many entries.
LAG_COUNT_CAP = 10_000


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def _last_entry_at(redis: Redis, key: str) -> float | None:
    # last-generated-id survives trimming (handled entries are trimmed away).
    try:
        info: Any = await redis.xinfo_stream(key)
    except ResponseError:
        return None
    last = _text(info.get("last-generated-id") or info.get(b"last-generated-id") or "0-0")
    millis = int(last.split("-")[0])
    return millis / 1000 if millis else None


async def stream_status(redis: Redis, keys: Keys, name: str) -> StreamStatus:
    """Length, dead letters and groups of the stream ``name``."""
    key = keys.stream(name)
    groups: list[GroupStatus] = []
    try:
        infos: Any = await redis.xinfo_groups(key)
    except ResponseError:  # the stream does not exist yet
        infos = []
    for raw in infos:
        info = {_text(k): v for k, v in raw.items()}
        lag = info.get("lag")
        if lag is None and info.get("last-delivered-id") is not None:
            last = _text(info["last-delivered-id"])
            after: Any = await redis.xrange(key, min=f"({last}", max="+", count=LAG_COUNT_CAP)
            lag = len(after)
        groups.append(
            GroupStatus(
                name=_text(info.get("name", "")),
                pending=int(info.get("pending") or 0),
                lag=None if lag is None else int(lag),
                consumers=int(info.get("consumers") or 0),
            )
        )
    return StreamStatus(
        stream=name,
        length=int(await redis.xlen(key)),
        dead_letters=int(await redis.xlen(keys.dlq(key))),
        groups=groups,
        last_entry_at=await _last_entry_at(redis, key),
    )


async def gather_streams(redis: Redis, keys: Keys) -> list[StreamStatus]:
    """:func:`stream_status` of every stream, in pipeline order."""
    return [await stream_status(redis, keys, name) for name in ALL_STREAMS]
