"""Heartbeat: a ``HEARTBEAT: alive (...)`` log line plus a Redis record with a TTL.

The record (:class:`~render_signal.common.records.HeartbeatRecord`) at
``<prefix>heartbeat:<service>:<instance>`` expires after three intervals, so a
dead process disappears by itself; ``<prefix>lastseen`` keeps each replica's
last beat time beyond that (entries older than a day are pruned), so readers
(:func:`read_heartbeats`, :func:`read_last_seen`) can say since when a
missing service was last seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.keys import Keys
from render_signal.common.records import HeartbeatDetails, HeartbeatRecord

__all__ = ["Heartbeat", "is_alive", "read_heartbeats", "read_last_seen", "read_replica_records"]

LAST_SEEN_KEEP_S = 86400.0

logger = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(HeartbeatRecord)


class Heartbeat:
    """Periodic liveness record for one service instance."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        service: str,
        instance: str,
        interval_s: float,
        details: Callable[[], HeartbeatDetails] | None = None,
    ) -> None:
        self.redis = redis
        self.key_base = keys
        self.key = keys.heartbeat(service, instance)
        self.last_seen_key = keys.last_seen
        self.field = f"{service}:{instance}"
        self.service = service
        self.instance = instance
        self.interval_s = interval_s
        self.details = details or HeartbeatDetails
        self.started_at = time.time()
        # The key must outlive a couple of missed beats but not a dead process for long.
        self.ttl_ms = int(max(self.interval_s * 3, 5.0) * 1000)

    def record(self) -> HeartbeatRecord:
        return HeartbeatRecord(
            service=self.service,
            instance=self.instance,
            pid=os.getpid(),
            started_at=self.started_at,
            ts=time.time(),
            interval_s=self.interval_s,
            details=self.details(),
        )

    async def beat(self) -> HeartbeatRecord:
        record = self.record()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.key, msgspec.json.encode(record), px=self.ttl_ms)
            pipe.hset(self.last_seen_key, self.field, repr(record.ts))
            await pipe.execute()
        summary = ", ".join(
            f"{k}={v}" for k, v in msgspec.structs.asdict(record.details).items() if v
        )
        logger.info(
            "HEARTBEAT: alive (service=%s, instance=%s%s)",
            self.service,
            self.instance,
            f", {summary}" if summary else "",
        )
        return record

    async def prune_last_seen(self, now: float) -> None:
        """Forget replicas not seen for a day (pods come and go under new names)."""
        seen = await read_last_seen(self.redis, self.key_base)
        old = [name for name, ts in seen.items() if now - ts > LAST_SEEN_KEEP_S]
        if old:
            await self.redis.hdel(self.last_seen_key, *old)

    async def run(self, stop: asyncio.Event) -> None:
        beats = 0
        while not stop.is_set():
            try:
                record = await self.beat()
                if beats % 100 == 0:
                    await self.prune_last_seen(record.ts)
                beats += 1
            except (RedisError, OSError) as exc:
                logger.warning("HEARTBEAT: could not record (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.key)


def is_alive(beat: HeartbeatRecord, now: float) -> bool:
    """Beating on time: a record older than 1.5 intervals (plus 1 s of slack) is a
    hung or stopped process, even while its key has not expired yet."""
    return now - beat.ts <= beat.interval_s * 1.5 + 1


class _PerReplica(Protocol):
    service: str
    instance: str


R = TypeVar("R", bound=_PerReplica)


async def read_replica_records(
    redis: Redis, pattern: str, decoder: msgspec.json.Decoder[R]
) -> list[R]:
    """The per-replica records under ``pattern`` (a heartbeat, an applied config: one
    key per replica, expiring with it), by service then instance; undecodable skipped."""
    records: list[R] = []
    async for key in redis.scan_iter(match=pattern, count=200):
        raw = await redis.get(key)
        if raw:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                records.append(decoder.decode(raw))
    records.sort(key=lambda r: (r.service, r.instance))
    return records


async def read_heartbeats(redis: Redis, keys: Keys) -> list[HeartbeatRecord]:
    """Every live heartbeat record, by service then instance."""
    return await read_replica_records(redis, keys.heartbeat_pattern, _decoder)


async def read_last_seen(redis: Redis, keys: Keys) -> dict[str, float]:
    """``<service>:<instance>`` -> the time of its last heartbeat."""
    raw: dict[bytes, bytes] = await redis.hgetall(keys.last_seen)  # type: ignore[assignment]
    seen: dict[str, float] = {}
    for name, value in raw.items():
        with contextlib.suppress(ValueError):
            seen[name.decode()] = float(value)
    return seen
