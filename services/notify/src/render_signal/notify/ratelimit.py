"""Outbound rate limit per target: a sliding one-hour window in a Redis ZSET.

The check and the count are one atomic script, and the member is the
``webhook-id:attempt``, so a send is counted exactly once (the original
counted twice and, in its latest version, not at all). A refused send is
rescheduled, never dropped.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["RateLimiter"]

WINDOW_S = 3600.0

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return '' end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.floor(tonumber(ARGV[2])) + 300)
  return ''
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return oldest[2]
"""


class RateLimiter:
    """``acquire`` returns None when the send may go, else the time a slot frees."""

    def __init__(self, redis: Redis, keys: Keys, window_s: float = WINDOW_S) -> None:
        self.redis = redis
        self.keys = keys
        self.window_s = window_s
        self._script = redis.register_script(_ACQUIRE)

    def key(self, target_url: str) -> str:
        digest = hashlib.sha256(target_url.encode()).hexdigest()[:16]
        return self.keys.notify_ratelimit(digest)

    async def acquire(self, target_url: str, member: str, limit: int, now: float) -> float | None:
        if limit <= 0:
            return None
        result = await self._script(
            keys=[self.key(target_url)], args=[repr(now), repr(self.window_s), limit, member]
        )
        text = result.decode() if isinstance(result, bytes) else str(result or "")
        if not text:
            return None
        return float(text) + self.window_s
