"""Redis link journal: already-offloaded source URLs reuse their ``r2_url``.

Keys (``<prefix>`` is ``REDIS_KEY_PREFIX``):

* ``<prefix>offload:links`` — hash, normalised source URL -> JSON
  ``{"r2_url", "original_filename", "provider", "created_at"}`` (``created_at``
  in Unix seconds).
* ``<prefix>offload:links:index`` — sorted set, source URL scored by
  ``created_at``; used to prune entries older than the reuse window.

Objects in R2 expire (the Worker stores ``expiresAt``; a cron deletes them), so
an entry is only reused while younger than ``max_age_s``; older ones are
ignored on read and pruned on write, at most once per ``prune_interval_s``
(a prune is an extra round trip; an entry past the window is never reused
whether or not it has been pruned yet).
"""

from __future__ import annotations

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
        prune_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.key = f"{prefix}offload:links"
        self.index_key = f"{prefix}offload:links:index"
        self.max_age_s = max_age_s
        self.prune_interval_s = prune_interval_s
        self._clock = clock
        self._next_prune = float("-inf")

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
        self,
        source_url: str,
        *,
        r2_url: str,
        provider: str,
        original_filename: str | None,
        also: Callable[[Any], None] | None = None,
    ) -> None:
        """Remember a successful offload; ``also`` adds commands to the same MULTI.

        Entries past the reuse window are pruned here at most once per
        ``prune_interval_s``.
        """
        now = self._clock()
        record = JournalEntry(
            r2_url=r2_url, provider=provider, created_at=now, original_filename=original_filename
        )
        stale: Any = None
        if now >= self._next_prune:
            self._next_prune = now + self.prune_interval_s
            stale = await self.redis.zrangebyscore(
                self.index_key, "-inf", now - self.max_age_s, 0, 500
            )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, source_url, msgspec.json.encode(record))
            pipe.zadd(self.index_key, {source_url: now})
            if stale:
                pipe.hdel(self.key, *stale)
                pipe.zrem(self.index_key, *stale)
            if also is not None:
                also(pipe)
            await pipe.execute()
