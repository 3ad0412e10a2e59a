"""Brute-force throttling of logins and of HTTP-ingress tokens, counted in Redis.

A *scope* (an account, an address, an account from one address) counts
failures for ``window_s``. Past its limit it is locked for ``lockout_s``,
doubling with every further failure up to :data:`MAX_LOCKOUT_S`, so a lock
always ends. One Lua script (:data:`_COUNT`) checks the locks and counts in a
single step.

Logins (:class:`LoginThrottle`), so that guessing is slow but nobody can lock
the owner out from elsewhere:

* **account + address** (``LOGIN_MAX_FAILURES``, default 5) and **address**
  (4 x that, for one address trying many user names) *block*: the 6th failure
  from one address answers 429 with ``Retry-After``, the right password too,
  until the lock ends;
* the **account** alone never blocks: past ``LOGIN_MAX_FAILURES`` failures
  from anywhere in the window, every attempt waits 0.5 s, doubling, at most
  :data:`MAX_ACCOUNT_DELAY_S` (3 s) before the password is checked;
* the attempt is **reserved** before the password is verified (the lock check
  and the count are one script), so N concurrent guesses can't all pass a
  limit of 5: at most 5 get verified.

HTTP ingress (:class:`IngressThrottle`): failed bearer tokens per address
(``INGRESS_MAX_FAILURES``, default 10); a locked address gets 429 with
``Retry-After`` even with the right token, until the lock ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["MAX_ACCOUNT_DELAY_S", "MAX_LOCKOUT_S", "IngressThrottle", "LoginThrottle"]

MAX_LOCKOUT_S = 3600
MAX_ACCOUNT_DELAY_S = 3.0
ADDRESS_LIMIT_FACTOR = 4
#: A limit no count reaches (a scope that is counted but never locked).
NEVER = 2**31

# KEYS: fail_1, lock_1, ..., fail_n, lock_n.
# ARGV: window, lockout, max lock, check locks first (1/0), limit_1 .. limit_n.
# Returns the seconds to wait: a lock found (checked first) or set by this count; 0 = go.
_COUNT = """
local scopes = #KEYS / 2
if ARGV[4] == '1' then
  local wait = 0
  for i = 1, scopes do
    local ttl = redis.call('TTL', KEYS[2 * i])
    if ttl > wait then wait = ttl end
  end
  if wait > 0 then return wait end
end
local blocked = 0
for i = 1, scopes do
  local fails = redis.call('INCR', KEYS[2 * i - 1])
  if fails == 1 then redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[1]) end
  local limit = tonumber(ARGV[4 + i])
  if fails > limit then
    local lock = tonumber(ARGV[2]) * 2 ^ (fails - limit - 1)
    lock = math.floor(math.min(lock, tonumber(ARGV[3])))
    redis.call('SET', KEYS[2 * i], '1', 'EX', lock)
    redis.call('EXPIRE', KEYS[2 * i - 1], math.max(tonumber(ARGV[1]), lock * 2))
    if lock > blocked then blocked = lock end
  end
end
return blocked
"""

KeyPair = Callable[[str, str], tuple[str, str]]
Scope = tuple[str, str, int]  # (scope name, value, limit)


def _digest(value: str) -> str:
    return hashlib.sha256(value.lower().encode()).hexdigest()[:32]


class FailureCounter:
    """Counts failures per scope; see the module docstring."""

    def __init__(
        self, redis: Redis, key_pair: KeyPair, *, lockout_s: int, window_s: int = 900
    ) -> None:
        self.redis = redis
        self.key_pair = key_pair
        self.lockout_s = lockout_s
        self.window_s = window_s
        self._count = redis.register_script(_COUNT)

    def _keys(self, scopes: list[Scope]) -> list[str]:
        return [key for name, value, _ in scopes for key in self.key_pair(name, _digest(value))]

    async def count(self, scopes: list[Scope], *, check_first: bool) -> int:
        """Count one failure in every scope; seconds to wait (0: go on)."""
        wait = await self._count(
            keys=self._keys(scopes),
            args=[self.window_s, self.lockout_s, MAX_LOCKOUT_S, int(check_first)]
            + [limit for _, _, limit in scopes],
        )
        return int(wait)

    async def locked_for(self, scopes: list[Scope]) -> int:
        """Seconds until every scope's lock has ended (0: none locked)."""
        ttls = [int(await self.redis.ttl(self._keys([s])[1])) for s in scopes]
        return max([0, *ttls])

    async def failures(self, scope: Scope) -> int:
        raw = await self.redis.get(self._keys([scope])[0])
        return int(raw or 0)

    async def clear(self, scopes: list[Scope]) -> None:
        await self.redis.delete(*self._keys(scopes))


class LoginThrottle:
    """Login attempts: reserve before verifying, slow the account, block the address."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        max_failures: int = 5,
        lockout_s: int = 30,
        window_s: int = 900,
    ) -> None:
        def key_pair(scope: str, digest: str) -> tuple[str, str]:
            return keys.login_failures(scope, digest), keys.login_lock(scope, digest)

        self.max_failures = max_failures
        self.counter = FailureCounter(redis, key_pair, lockout_s=lockout_s, window_s=window_s)

    def _blocking(self, user: str, ip: str) -> list[Scope]:
        return [
            ("pair", f"{user}\x00{ip}", self.max_failures),
            ("ip", ip, self.max_failures * ADDRESS_LIMIT_FACTOR),
        ]

    def _account(self, user: str) -> Scope:
        return ("user", user, NEVER)

    async def reserve(self, user: str, ip: str) -> tuple[int, float]:
        """``(retry_after, delay)``: 429 for ``retry_after`` s when > 0; else wait
        ``delay`` s, verify, then call :meth:`failed` or :meth:`succeeded`."""
        wait = await self.counter.count(self._blocking(user, ip), check_first=True)
        if wait > 0:
            return wait, 0.0
        over = await self.counter.failures(self._account(user)) - self.max_failures
        delay = 0.0 if over <= 0 else min(MAX_ACCOUNT_DELAY_S, 0.5 * 2.0 ** (over - 1))
        return 0, delay

    async def failed(self, user: str, ip: str) -> None:
        """The account's failure count (the address scopes counted at reservation)."""
        await self.counter.count([self._account(user)], check_first=False)

    async def succeeded(self, user: str, ip: str) -> None:
        """This address may try again from zero (the account count keeps its window)."""
        await self.counter.clear(self._blocking(user, ip))


class IngressThrottle:
    """Failed ingress tokens per address (see the module docstring)."""

    def __init__(
        self, redis: Redis, keys: Keys, *, max_failures: int = 10, lockout_s: int = 60
    ) -> None:
        def key_pair(scope: str, digest: str) -> tuple[str, str]:
            return keys.ingress_failures(scope, digest), keys.ingress_lock(scope, digest)

        self.max_failures = max_failures
        self.counter = FailureCounter(redis, key_pair, lockout_s=lockout_s)

    def _scopes(self, ip: str) -> list[Scope]:
        return [("ip", ip, self.max_failures)]

    async def retry_after(self, ip: str) -> int:
        """Seconds this address must wait before any token is looked at (0: none)."""
        return await self.counter.locked_for(self._scopes(ip))

    async def failed(self, ip: str) -> int:
        """Count a wrong token; seconds of the lock it started (0: not locked)."""
        return await self.counter.count(self._scopes(ip), check_first=False)
