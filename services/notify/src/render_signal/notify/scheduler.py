"""The scheduler loop: moves due items from the schedule ZSET back to delivery.

Each due id is claimed atomically by pushing its score to the end of a lease
(so another replica, or this one after a crash, only retakes it once the lease
is over), then processed by :meth:`NotifyService.process_id`, which either
finishes it or re-parks it at a new due time. Time comes from the injected
clock; only the polling cadence uses real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError
from render_signal.notify import metrics
from render_signal.notify.deadletters import dead_letter_key
from render_signal.notify.service import NotifyService

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, service: NotifyService, interval_s: float, concurrency: int) -> None:
        self.service = service
        self.interval_s = interval_s
        self.concurrency = max(1, concurrency)
        self.deferred = 0

    async def tick(self) -> int:
        """Process every item due now; returns how many were claimed."""
        service = self.service
        total = 0
        while True:
            now = service.clock.now()
            ids = await service.queue.claim_due(now, now + service.lease_s, self.concurrency)
            if not ids:
                break
            total += len(ids)
            results = await asyncio.gather(
                *(service.process_id(i) for i in ids), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    logger.error("SCHEDULER: item failed; retried after its lease: %r", result)
        self.deferred = await service.queue.count()
        metrics.DEFERRED.set(self.deferred)
        metrics.DEAD_LETTERS.set(await service.redis.xlen(dead_letter_key(service.prefix)))
        return total

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.interval_s
        while not stop.is_set():
            try:
                await self.tick()
                backoff = self.interval_s
            except (RedisError, OSError) as exc:
                logger.warning("SCHEDULER: redis unavailable (%s)", type(exc).__name__)
                backoff = min(backoff * 2, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
