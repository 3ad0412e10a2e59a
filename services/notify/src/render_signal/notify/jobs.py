"""Durable per-(email, target) delivery jobs: a Redis hash plus a due-time ZSET.

* ``<prefix>notify:jobs`` (hash): webhook-id -> job JSON (:class:`Job`).
* ``<prefix>notify:scheduled`` (ZSET): webhook-id scored by the Unix time it
  is due (deferral, retry, rate limit) or, while a worker holds it, by the
  end of its lease -- so a crash mid-send only delays the item.
* ``<prefix>notify:sent:<webhook-id>``: SET NX EX 30 d after a 2xx; nothing
  is sent again for that id.
* ``<prefix>notify:final:<webhook-id>``: dead-lettered or dropped (30 d),
  cleared by a replay.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from render_signal.common.events import MailOffloaded
from render_signal.notify.routing import Target

__all__ = ["SENT_TTL_S", "Job", "JobQueue"]

SENT_TTL_S = 30 * 86400

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return ids
"""


class Job(msgspec.Struct, kw_only=True):
    """One email for one target, with its delivery state."""

    webhook_id: str
    event: MailOffloaded
    target: Target
    attempt: int = 0
    first_attempt_at: float | None = None
    created_at: float = 0.0
    deferred: bool = False


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Job)


class JobQueue:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.jobs_key = f"{prefix}notify:jobs"
        self.schedule_key = f"{prefix}notify:scheduled"
        self._claim = redis.register_script(_CLAIM)

    def sent_key(self, webhook_id: str) -> str:
        return f"{self.prefix}notify:sent:{webhook_id}"

    def final_key(self, webhook_id: str) -> str:
        return f"{self.prefix}notify:final:{webhook_id}"

    @staticmethod
    def encode(job: Job) -> bytes:
        return _encoder.encode(job)

    @staticmethod
    def decode(raw: bytes) -> Job:
        return _decoder.decode(raw)

    async def create(self, job: Job, score: float) -> bool:
        """Store a new job due at ``score``; False if one exists for this id."""
        created = await self.redis.hsetnx(self.jobs_key, job.webhook_id, self.encode(job))
        if not created:
            return False
        await self.redis.zadd(self.schedule_key, {job.webhook_id: score})
        return True

    async def put(self, job: Job, due: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.jobs_key, job.webhook_id, self.encode(job))
            pipe.zadd(self.schedule_key, {job.webhook_id: due})
            await pipe.execute()

    async def lease(self, webhook_id: str, until: float) -> None:
        await self.redis.zadd(self.schedule_key, {webhook_id: until})

    async def get(self, webhook_id: str) -> Job | None:
        raw: Any = await self.redis.hget(self.jobs_key, webhook_id)
        if raw is None:
            return None
        try:
            return self.decode(raw)
        except msgspec.DecodeError:
            return None

    async def done(self, webhook_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.schedule_key, webhook_id)
            pipe.hdel(self.jobs_key, webhook_id)
            await pipe.execute()

    async def claim_due(self, now: float, lease_until: float, limit: int) -> list[str]:
        ids = await self._claim(
            keys=[self.schedule_key], args=[repr(now), repr(lease_until), limit]
        )
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def is_finished(self, webhook_id: str) -> bool:
        return bool(await self.redis.exists(self.sent_key(webhook_id), self.final_key(webhook_id)))

    async def mark_sent(self, webhook_id: str) -> bool:
        """Record the 2xx; False when it was already recorded (a redelivery)."""
        return bool(await self.redis.set(self.sent_key(webhook_id), "1", nx=True, ex=SENT_TTL_S))

    async def mark_final(self, webhook_id: str, state: str) -> None:
        await self.redis.set(self.final_key(webhook_id), state, ex=SENT_TTL_S)

    async def count(self) -> int:
        return int(await self.redis.zcard(self.schedule_key))
