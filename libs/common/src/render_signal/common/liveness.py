"""Replica liveness: one short-lived key per worker process, the basis of takeover.

Every worker process keeps ``<prefix>live:<owner>`` (:meth:`Keys.liveness`),
where ``owner`` is :func:`~render_signal.common.keys.consumer_name` of its
service and instance -- the very name it uses as stream consumer, notify lease
holder and IMAP lock owner. The key lives ``LIVENESS_TTL_SECONDS`` (default
8 s) and is renewed every quarter of that by a task of its own, so a slow
handler (a 60 s Worker call, a long webhook) never lets it lapse: only a dead
process, a process whose event loop is stalled for a whole TTL, or one cut off
from Redis for that long loses it.

Other replicas take over what a holder has (pending stream entries, notify
leases, the IMAP lock) only once its key is gone: expired after a crash, or
deleted by :meth:`Liveness.release` at the end of a graceful drain. The TTL is
kept by Redis alone, so clock skew between hosts plays no part. The choice,
its numbers and its worst cases are written up in ``common.streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time

from prometheus_client import Gauge, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.keys import Keys
from render_signal.common.locks import RELEASE_IF_OWNER

__all__ = ["DEFAULT_TTL_S", "LONGEST_GAP", "RENEW_GAP", "Liveness"]

logger = logging.getLogger(__name__)

#: Liveness TTL: a dead replica's work is taken over at most this long (plus one
#: takeover sweep) after its last renewal.
DEFAULT_TTL_S = 8.0
#: Renewals per TTL: three may fail or come late before the key lapses.
RENEWALS_PER_TTL = 4
#: Pause before retrying a failed renewal (Redis restarting, a network blip).
RETRY_S = 0.5

RENEW_GAP = Histogram(
    "render_signal_liveness_renew_gap_seconds",
    "Time between two successful renewals of this replica's liveness key"
    " (others take its work over once a gap exceeds the TTL)",
    buckets=(0.5, 1, 1.5, 2, 2.5, 3, 4, 6, 8, 12, 16, 30),
)
LONGEST_GAP = Gauge(
    "render_signal_liveness_longest_gap_seconds",
    "Longest time between two successful liveness renewals since start (how close this"
    " replica came to being taken over while alive: the TTL)",
)


class Liveness:
    """The liveness key of one process.

    Args:
        redis: client.
        keys: this deployment's keys.
        owner: ``consumer_name(service, instance)``.
        ttl_s: key lifetime; renewed every ``ttl_s / 4``.
    """

    def __init__(self, redis: Redis, keys: Keys, owner: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.owner = owner
        self.key = keys.liveness(owner)
        self.ttl_s = ttl_s
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.interval_s = ttl_s / RENEWALS_PER_TTL
        #: Identifies this life of the owner (pid + random): what release compares.
        self.token = f"{os.getpid()}:{secrets.token_hex(8)}"
        #: Set once the key was first written: nothing may be leased or read before,
        #: or another replica could take it over as a dead holder's.
        self.established = asyncio.Event()
        #: Longest time between two successful renewals so far (seconds).
        self.max_gap_s = 0.0
        self._last_ok: float | None = None
        # Only our own life's key: a replica restarted under the same name may
        # already have written its own.
        self._release = redis.register_script(RELEASE_IF_OWNER)

    @property
    def prefix(self) -> str:
        """Key prefix the takeover scripts append a holder's name to."""
        return self.keys.liveness("")

    def key_for(self, owner: str) -> str:
        """Another holder's liveness key."""
        return self.keys.liveness(owner)

    async def renew(self) -> None:
        """Write the key with a fresh TTL (raises on Redis errors)."""
        await self.redis.set(self.key, self.token, px=self.ttl_ms)
        now = time.monotonic()
        if self._last_ok is not None:
            gap = now - self._last_ok
            RENEW_GAP.observe(gap)
            if gap > self.max_gap_s:
                self.max_gap_s = gap
                LONGEST_GAP.set(gap)
            if gap > self.ttl_s / 2:
                logger.warning(
                    "LIVENESS: renewal came %.1fs after the previous one (TTL %.0fs);"
                    " a gap over the TTL lets other replicas take this one's work over",
                    gap,
                    self.ttl_s,
                )
        self._last_ok = now
        self.established.set()

    async def run(self, done: asyncio.Event) -> None:
        """Renew until ``done`` -- set after the drain, not at SIGTERM: the work
        still finishing during the drain is ours until then."""
        while not done.is_set():
            try:
                await self.renew()
                wait = self.interval_s
            except (RedisError, OSError) as exc:
                logger.warning("LIVENESS: renewal failed (%s)", type(exc).__name__)
                wait = min(self.interval_s, RETRY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=wait)

    async def wait_established(self, stop: asyncio.Event) -> bool:
        """Until the key was first written (True) or ``stop`` is set (False)."""
        waiters = [
            asyncio.ensure_future(self.established.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.established.is_set()

    async def release(self) -> bool:
        """Delete the key (if still this life's): what is left is taken over at once."""
        return bool(await self._release(keys=[self.key], args=[self.token]))
