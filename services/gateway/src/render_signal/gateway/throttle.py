"""Login brute-force throttling per account and per client IP.

Failures are counted in Redis for ``window_s``. Once a scope (account or IP)
reaches ``max_failures``, it is locked for ``lockout_s``, doubling with every
further failure (capped at 1 h) so a lockout never becomes a permanent denial.
The lock is checked before the password, and the same generic message is
returned either way.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["LoginThrottle"]

MAX_LOCKOUT_S = 3600

_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local limit = tonumber(ARGV[2])
if n >= limit then
  local lock = tonumber(ARGV[3]) * (2 ^ (n - limit))
  if lock > tonumber(ARGV[4]) then lock = tonumber(ARGV[4]) end
  redis.call('SET', KEYS[2], '1', 'EX', math.floor(lock))
  redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[1]), math.floor(lock) * 2))
end
return n
"""


class LoginThrottle:
    """Counts failed logins; answers how long a scope must wait."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        max_failures: int = 5,
        lockout_s: int = 30,
        window_s: int = 900,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.window_s = window_s
        self._fail = redis.register_script(_FAIL)

    def _keys(self, scope: str, value: str) -> tuple[str, str]:
        digest = hashlib.sha256(value.lower().encode()).hexdigest()[:32]
        return self.keys.login_failures(scope, digest), self.keys.login_lock(scope, digest)

    async def retry_after(self, user: str, ip: str) -> int:
        """Seconds to wait (0 when neither the account nor the IP is locked)."""
        wait = 0
        for scope, value in (("user", user), ("ip", ip)):
            ttl = int(await self.redis.ttl(self._keys(scope, value)[1]))
            wait = max(wait, ttl)
        return wait

    async def failed(self, user: str, ip: str) -> None:
        for scope, value in (("user", user), ("ip", ip)):
            fail_key, lock_key = self._keys(scope, value)
            await self._fail(
                keys=[fail_key, lock_key],
                args=[self.window_s, self.max_failures, self.lockout_s, MAX_LOCKOUT_S],
            )

    async def succeeded(self, user: str, ip: str) -> None:
        keys = [k for scope, v in (("user", user), ("ip", ip)) for k in self._keys(scope, v)]
        await self.redis.delete(*keys)
