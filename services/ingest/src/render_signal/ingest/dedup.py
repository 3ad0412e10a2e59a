"""Email-id dedup: ``SET <prefix>ingest:seen:<email_id> 1 NX EX <ttl>``.

Checked before processing, marked only after ``mail.received`` is published:
a crash in between republishes the email (downstream absorbs duplicates by
``email_id``), it never loses one.
"""

from __future__ import annotations

from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["SeenEmails"]


class SeenEmails:
    """Which email ids ingest already published (TTL-bounded)."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    def key(self, email_id: str) -> str:
        return self.keys.ingest_seen(email_id)

    async def seen(self, email_id: str) -> bool:
        return bool(await self.redis.exists(self.key(email_id)))

    async def mark(self, email_id: str) -> bool:
        """Remember ``email_id``; True if it was not marked yet."""
        return bool(await self.redis.set(self.key(email_id), "1", nx=True, ex=self.ttl_s))
