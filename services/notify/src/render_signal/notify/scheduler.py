"""The scheduler loop: moves due items from the schedule ZSET back to delivery.

Each due id is claimed atomically by pushing its score to the end of a lease
(so another replica, or this one after a crash, only retakes it once the lease
is over), then processed by :meth:`NotifyService.process_id`, which either
finishes it or re-parks it at a new due time. Time comes from the injected
clock; only the polling cadence uses real time.

Before its first tick, :meth:`Scheduler.run` makes every job still leased by
this instance name due now (a previous life of this replica died holding it)
and only then sets :attr:`Scheduler.recovered`; the stream consumer waits for
it so a job it leases in this life is never mistaken for a leftover.

With a :class:`~render_signal.common.liveness.Liveness` (every replica in
production), the scheduler starts only once this process's liveness key
exists, and about every second releases the leases of holders whose key is
gone (:meth:`JobQueue.release_dead`), then claims them like any due job: a
dead replica's in-flight jobs go out again within the liveness TTL, whatever
name its replacement has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import RedisError
from render_signal.common.configdocs import WebhookConfig
from render_signal.common.liveness import Liveness
from render_signal.common.overrides import make_due
from render_signal.common.records import GateState
from render_signal.notify import metrics
from render_signal.notify.liveconfig import load_live_config
from render_signal.notify.service import NotifyService
from render_signal.notify.window import GateConfig, decide, is_open, next_opening

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)


#: How often dead holders' leases are looked for (a Lua pass over the lease hash).
TAKEOVER_INTERVAL_S = 1.0
#: How long items being sent may run before the next claim goes ahead without them.
CLAIM_AHEAD_S = 0.25


class Scheduler:
    def __init__(
        self,
        service: NotifyService,
        interval_s: float,
        concurrency: int,
        liveness: Liveness | None = None,
    ) -> None:
        self.service = service
        self.liveness = liveness
        self._last_takeover = 0.0
        #: Leases released because their holder's liveness key was gone.
        self.taken_over = 0
        self.interval_s = interval_s
        self.concurrency = max(1, concurrency)
        self.deferred = 0
        self.recovered = asyncio.Event()
        self._versions: dict[str, int] = {}
        self.gate = GateState(open=True)
        # Absence, the window or the switch changed: held emails are looked at again now.
        self._rules_changed = False
        service.watcher.subscribe(self._on_config_change)

    def _on_config_change(self, name: str | None) -> None:
        if name in (None, WebhookConfig.NAME):
            self._rules_changed = True

    async def release_held(self) -> int:
        """Make every job parked by a sending rule due now; returns how many.

        Processing decides again under the new rules: what is now allowed goes
        out at once, the rest is parked again (until its new opening time).
        """
        service = self.service
        members: set[bytes] = await service.redis.smembers(service.keys.notify_deferred)  # type: ignore[assignment]
        ids = [member.decode() for member in members]
        if not ids:
            return 0
        # A job being sent right now (leased) is left alone: it is decided anew anyway.
        moved = await make_due(service.redis, service.keys, ids, service.clock.now())
        logger.info("NOTIFY: sending rules changed; %d held email(s) re-evaluated now", moved)
        return moved

    def _gate_state(self, gate: GateConfig, now: float) -> GateState:
        if is_open(gate, now):
            return GateState(open=True)
        reason = decide(gate, now, None, False).reason
        return GateState(open=False, reason=reason, until=next_opening(gate, now))

    async def recover(self) -> int:
        """Make this instance's leftover leases due now; returns how many."""
        count = await self.service.queue.recover(self.service.clock.now())
        if count:
            logger.warning("NOTIFY: recovered %d in-flight job(s) from a previous run", count)
        return count

    async def release_dead(self) -> int:
        """Make the jobs of dead lease holders due now (at most every second)."""
        now = time.monotonic()
        if self.liveness is None or now - self._last_takeover < TAKEOVER_INTERVAL_S:
            return 0
        self._last_takeover = now
        released = await self.service.queue.release_dead(self.service.clock.now())
        for holder, count in released.items():
            logger.warning(
                "NOTIFY: took over %d in-flight job(s) of %s (no liveness key)", count, holder
            )
        total = sum(released.values())
        self.taken_over += total
        return total

    def config_versions(self) -> dict[str, int]:
        """Config document versions last loaded (cached; no Redis call)."""
        self._versions.update(self.service.watcher.versions())
        return dict(self._versions)

    async def wait_recovered(self, stop: asyncio.Event) -> None:
        """Until the start-up recovery is done or ``stop`` is set."""
        waiters = [asyncio.create_task(self.recovered.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def tick(self) -> int:
        """Process every item due now (and what falls due meanwhile); returns how
        many were claimed.

        Up to ``concurrency`` items run at once, each in a task of its own; the
        next claim waits for those running at most :data:`CLAIM_AHEAD_S`, then
        fills the room left. Why: a tick used to claim ``concurrency`` items and
        wait for all of them, so one slow receiver (up to its timeout) held back
        every other due email, a whole window opening's backlog included; waiting
        a little for quick ones keeps one claim per ``concurrency`` items. The
        housekeeping (rules changed, the gate, dead holders' leases) runs between
        claims, so a long tick delays none of it.
        """
        service = self.service
        total = 0
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._housekeeping()
                room = self.concurrency - len(running)
                if room > 0:
                    now = service.clock.now()
                    due = await service.queue.claim_due(now, now + service.lease_s, room)
                    total += len(due.ids)
                    running.update(asyncio.create_task(self._process(i)) for i in due.ids)
                    if not due.ids:
                        # The sizes come with an empty claim: after all that was due.
                        self.deferred = due.scheduled
                        metrics.DEFERRED.set(due.scheduled)
                        metrics.DEAD_LETTERS.set(due.dead_letters)
                        if not running:
                            return total
                _, running = await asyncio.wait(running, timeout=CLAIM_AHEAD_S)
        finally:
            if running:  # Redis failed under a claim: what runs still finishes
                await asyncio.wait(running)

    async def _housekeeping(self) -> None:
        service = self.service
        if self._rules_changed:
            self._rules_changed = False
            await self.release_held()
        # Loaded every time (cached by the watcher): a changed document is picked up
        # without waiting for an email, so the heartbeat shows what is in force.
        config = await load_live_config(service.watcher, service.settings)
        self.gate = self._gate_state(config.gate, service.clock.now())
        await self.release_dead()

    async def _process(self, job_id: str) -> None:
        try:
            await self.service.process_id(job_id)
        except Exception as exc:  # the lease brings it back; the loop goes on
            logger.error("SCHEDULER: item failed; retried after its lease: %r", exc)

    async def run(self, stop: asyncio.Event) -> None:
        if self.liveness is not None and not await self.liveness.wait_established(stop):
            return
        backoff = self.interval_s
        while not stop.is_set() and not self.recovered.is_set():
            try:
                await self.recover()
                self.recovered.set()
            except (RedisError, OSError) as exc:
                logger.warning("SCHEDULER: recovery waits for redis (%s)", type(exc).__name__)
                backoff = min(backoff * 2, 5.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
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
