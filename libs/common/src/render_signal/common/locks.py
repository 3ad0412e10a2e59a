"""A Redis lock with an owner token, renewal and compare-and-delete release.

This is an *efficiency* lock (one IMAP watcher per mailbox), not a correctness
lock: a GC pause longer than the TTL can briefly leave two holders, so the
work it guards must stay idempotent (the ingest checkpoint and dedup are).

With a liveness prefix (``common.liveness``), a lock whose holder's liveness
key is gone is free: a replica taking over need not wait out the lock's own
TTL (300 s for the IMAP watcher) after the holder died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["RELEASE_IF_OWNER", "RedisLock"]

logger = logging.getLogger(__name__)

# Renew only if we still own it; otherwise report loss.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Take the lock when free (1), when the holder is a previous life of this same
# replica (2: same stable owner name, a restarted process must not wait out its
# own dead lease), or when the holder's liveness key is gone (3: it died, under
# whatever name). Tokens are "<owner>:<hex>". ARGV: token, ttl ms, own prefix
# ("<owner>:" or ""), liveness key prefix (or "").
_ACQUIRE_OWN = """
local current = redis.call('GET', KEYS[1])
local taken = 0
if not current then
  taken = 1
elseif ARGV[3] ~= '' and string.sub(current, 1, string.len(ARGV[3])) == ARGV[3] then
  taken = 2
elseif ARGV[4] ~= '' then
  local holder = string.match(current, '^(.+):%x+$')
  if holder and redis.call('EXISTS', ARGV[4] .. holder) == 0 then
    taken = 3
  end
end
if taken > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return taken
"""
#: Delete only our own key (a lock, a liveness key): a plain DEL could free
#: someone else's. KEYS: the key. ARGV: the token we wrote.
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLock:
    """``SET key token NX PX ttl`` with renewal.

    Args:
        redis: client.
        key: lock key (ingest uses exactly ``render_signal:poller_lock``).
        ttl_s: lease length; renewed every ``ttl_s / 3`` while held.
        owner: human-readable holder description stored in the token.
        liveness_prefix: ``Keys.liveness("")`` when owners are liveness owners;
            then ``acquire(reclaim_own=True)`` also takes a dead holder's lock.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        ttl_s: float = 300.0,
        owner: str = "",
        liveness_prefix: str = "",
    ) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        who = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.owner = who
        self.token = f"{who}:{secrets.token_hex(10)}"
        self.liveness_prefix = liveness_prefix
        self._acquire_own = redis.register_script(_ACQUIRE_OWN)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(RELEASE_IF_OWNER)
        self.held = False

    async def acquire(self, *, reclaim_own: bool = False) -> bool:
        """Try once; True when this instance now holds the lock.

        With ``reclaim_own``, a lock whose token carries this same owner name
        (a previous run of this replica, killed before it could release) is taken
        over at once, and so is one whose holder has no liveness key (with a
        ``liveness_prefix``). Owner names must then be unique per replica, as the
        stable consumer names already are.
        """
        if not reclaim_own:
            ok = await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms)
            self.held = bool(ok)
            return self.held
        previous = await self.holder() if self.liveness_prefix else None
        result = await self._acquire_own(
            keys=[self.key],
            args=[self.token, self.ttl_ms, f"{self.owner}:", self.liveness_prefix],
        )
        if int(result) == 2:
            logger.warning("LOCK: took over %s from a previous run of %s", self.key, self.owner)
        elif int(result) == 3:
            dead = (previous or "?").rsplit(":", 1)[0]
            logger.warning("LOCK: took over %s from %s (no liveness key)", self.key, dead)
        self.held = bool(result)
        return self.held

    async def holder(self) -> str | None:
        """The current holder's token, or None when free."""
        value: bytes | None = await self.redis.get(self.key)  # type: ignore[assignment]
        return value.decode() if value else None

    async def renew(self) -> bool:
        """Extend the lease; False means the lock was lost (expired or taken)."""
        result = await self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
        self.held = bool(result)
        return self.held

    async def release(self) -> bool:
        """Delete the lock if we still own it. Never deletes another owner's lock."""
        result = await self._release(keys=[self.key], args=[self.token])
        self.held = False
        return bool(result)

    async def keep_renewed(self, lost: asyncio.Event, stop: asyncio.Event) -> None:
        """Renew every ttl/3 until ``stop``; set ``lost`` if the lease is gone."""
        interval = self.ttl_ms / 3000
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            try:
                if not await self.renew():
                    logger.error("LOCK: lost %s (expired or taken over)", self.key)
                    lost.set()
                    return
            except RedisError as exc:
                # Keep trying until the lease would have expired anyway.
                logger.warning("LOCK: renewal of %s failed: %s", self.key, exc)
