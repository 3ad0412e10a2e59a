"""Redis link journal: already-offloaded source URLs reuse their ``r2_url``.

Keys (``<prefix>`` is ``REDIS_KEY_PREFIX``):

* ``<prefix>offload:links`` — hash, normalised source URL -> JSON
  ``{"r2_url", "original_filename", "provider", "created_at"}`` (``created_at``
  in Unix seconds).
* ``<prefix>offload:links:index`` — sorted set, source URL scored by
  ``created_at``; used to prune entries older than the reuse window.

Objects in R2 expire (the Worker stores ``expiresAt``; a cron deletes them), so
an entry is only reused while younger than ``max_age_s``; older ones are
pruned on write and ignored on read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

__all__ = ["JournalEntry", "LinkJournal"]


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    r2_url: str
    provider: str
    created_at: float
    original_filename: str | None = None


class LinkJournal:
    """Source URL -> r2_url memory in Redis with a reuse window."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.key = f"{prefix}offload:links"
        self.index_key = f"{prefix}offload:links:index"
        self.max_age_s = max_age_s
        self._clock = clock

    async def get(self, source_url: str) -> JournalEntry | None:
        """The entry for ``source_url`` when present and still inside the reuse window."""
        raw: Any = await self.redis.hget(self.key, source_url)
        if not raw:
            return None
        try:
            entry = msgspec.json.decode(raw, type=JournalEntry)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if self._clock() - entry.created_at > self.max_age_s:
            return None
        return entry

    async def put(
        self, source_url: str, *, r2_url: str, provider: str, original_filename: str | None
    ) -> None:
        """Remember a successful offload and prune entries past the reuse window."""
        now = self._clock()
        record = {
            "r2_url": r2_url,
            "original_filename": original_filename,
            "provider": provider,
            "created_at": now,
        }
        cutoff = now - self.max_age_s
        stale: Any = await self.redis.zrangebyscore(self.index_key, "-inf", cutoff, 0, 500)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, source_url, json.dumps(record, ensure_ascii=False))
            pipe.zadd(self.index_key, {source_url: now})
            if stale:
                pipe.hdel(self.key, *stale)
                pipe.zrem(self.index_key, *stale)
            await pipe.execute()
