"""The IMAP watcher: one per deployment (Redis lock), IDLE or polling, self-healing.

* Singleton: ``RedisLock`` on exactly ``<prefix>poller_lock`` (``render_signal:poller_lock``
  by default), TTL ``POLLER_LOCK_TTL_SECONDS``, renewed every TTL/3, released on
  shutdown. A replica that does not hold it retries every ``TTL/10`` (at most 2 s);
  it takes the lock when free, or -- with the process's liveness -- as soon as the
  holder's liveness key is gone (``common.liveness``), so after a crash within the
  liveness TTL plus one retry, not the lock's own TTL.
* Mode: IDLE when offered (re-issued every ``IMAP_IDLE_RENEW_SECONDS`` < 10 min), else
  a poll every ``EMAIL_POLLING_INTERVAL_SECONDS``. Every IDLE wake-up, renewal or poll
  runs one :class:`MailboxSync` pass: nothing depends on one EXISTS being noticed.
* Schedule: ``polling_config`` is re-read (through the ConfigWatcher cache) at every
  step, so changes apply without a restart. Outside the schedule the watcher logs
  out and re-checks every ``POLLING_INACTIVE_CHECK_INTERVAL_SECONDS``.
* Failures (network, silent server, Redis): disconnect, then reconnect after a
  capped exponential backoff with full jitter; :attr:`ImapWatcher.state` says
  what it is doing (heartbeat, status verdict, ``/ready``).

Over 300 lines: the loop above is one state machine (lock, schedule, connect,
sync, IDLE, backoff); split, its transitions would be read across files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.configdocs import PollingConfig
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.errors import RenderSignalError
from render_signal.common.keys import consumer_name
from render_signal.common.liveness import Liveness
from render_signal.common.locks import RedisLock
from render_signal.common.records import ImapState
from render_signal.ingest.checkpoint import CheckpointStore
from render_signal.ingest.faults import FaultPoints
from render_signal.ingest.imap_client import (
    ImapAdapter,
    ImapAuthError,
    ImapEndpoint,
    ImapUnavailable,
    SelectedMailbox,
)
from render_signal.ingest.imapmetrics import (
    CONNECTED,
    LOCK_HELD,
    RECONNECTS,
    SCHEDULE_ACTIVE,
    set_mode,
)
from render_signal.ingest.mailbox_sync import MailboxSync
from render_signal.ingest.schedule import PollingSchedule, zone_clock
from render_signal.ingest.settings import IngestSettings

__all__ = ["ImapWatcher"]

logger = logging.getLogger(__name__)

#: Granularity of waits inside IDLE and between polls (stop/schedule/lock checks).
TICK_S = 1.0
# Passes in a row while the server keeps announcing new mail (a burst); then IDLE,
# whose start reports anything still pending.
MAX_SYNC_ROUNDS = 20


class _Leave(RenderSignalError):
    """End the session quietly: stop requested, lock lost, or schedule inactive."""


class ImapWatcher:
    """Runs while ``stop`` is unset; see the module docstring."""

    def __init__(
        self,
        settings: IngestSettings,
        redis: Redis,
        config: ConfigWatcher,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        endpoint: ImapEndpoint | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self.settings = settings
        self.liveness = liveness
        self.redis = redis
        self.config = config
        self.clock = clock or zone_clock(settings.common.timezone)
        self.endpoint = endpoint or ImapEndpoint(
            host=settings.imap_server,
            port=settings.imap_port,
            username=settings.email_address,
            password=settings.email_password,
            use_ssl=settings.imap_use_ssl,
            starttls=settings.imap_starttls,
            timeout_s=settings.imap_timeout_s,
            ca_file=settings.imap_ca_file,
        )
        keys = settings.common.keys
        self.lock = RedisLock(
            redis,
            keys.poller_lock,
            settings.lock_ttl_s,
            owner=consumer_name("ingest", settings.common.instance),
            liveness_prefix=liveness.prefix if liveness is not None else "",
        )
        self.sync = MailboxSync(
            redis,
            keys=keys,
            checkpoints=CheckpointStore(redis, keys),
            max_email_bytes=settings.max_email_bytes,
            mark_seen=settings.mark_seen,
            initial_sync=settings.imap_initial_sync,
            faults=FaultPoints(settings.fault_point),
        )
        # Standbys look often: a takeover must not wait long after the holder's
        # liveness key is gone (one GET or script call per retry, nothing more).
        self.retry_lock_s = max(0.2, min(settings.lock_ttl_s / 10, 2.0))
        self._failures = 0
        self._last_holder: str | None = None
        self._inactive_reason: str | None = None
        self.schedule_checks = 0  # evaluations of polling_config (observable by tests)
        self.state = ImapState(role="standby")

    # -- lock ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Component entry point: hold the lock, watch, give the lock back on stop."""
        set_mode(None)
        CONNECTED.set(0)
        if self.liveness is not None and not await self.liveness.wait_established(stop):
            return
        while not stop.is_set():
            try:
                # A restart of this replica takes its own dead lock back at once.
                acquired = await self.lock.acquire(reclaim_own=True)
            except RedisError as exc:
                logger.warning("IMAP: cannot reach Redis for the poller lock: %s", exc)
                acquired = False
            if not acquired:
                self.state.role, self.state.connected = "standby", False
                await self._report_holder()
                await self._sleep(stop, self.retry_lock_s)
                continue
            logger.info("IMAP: singleton lock acquired (%s)", self.lock.key)
            self.state.role = "watching"
            self._last_holder = None
            LOCK_HELD.set(1)
            lost = asyncio.Event()
            renew_stop = asyncio.Event()
            renewer = asyncio.create_task(self.lock.keep_renewed(lost, renew_stop))
            try:
                await self._watch(stop, lost)
            finally:
                renew_stop.set()
                await renewer
                LOCK_HELD.set(0)
                self.state.role, self.state.connected = "standby", False
                with contextlib.suppress(RedisError):
                    if not lost.is_set():
                        await self.lock.release()
                        logger.info("IMAP: singleton lock released")
        set_mode(None)

    async def _report_holder(self) -> None:
        with contextlib.suppress(RedisError):
            holder = await self.lock.holder()
            if holder and holder != self._last_holder:
                logger.info("IMAP: singleton lock held by %s", holder)
            self._last_holder = holder

    # -- sessions -------------------------------------------------------------------------
    async def _watch(self, stop: asyncio.Event, lost: asyncio.Event) -> None:
        while not (stop.is_set() or lost.is_set()):
            imap = ImapAdapter(self.endpoint)
            try:
                if not await self._active():
                    await self._sleep(stop, self.settings.inactive_check_s, lost)
                    continue
                await imap.connect()
                CONNECTED.set(1)
                self.state.connected, self.state.last_error = True, None
                logger.info(
                    "IMAP: connected to %s:%d (%s)",
                    self.endpoint.host,
                    self.endpoint.port,
                    "IDLE" if imap.supports_idle else "no IDLE",
                )
                self._failures = 0
                await self._session(imap, stop, lost)
            except _Leave:
                pass
            except (ImapUnavailable, RedisError, OSError) as exc:
                CONNECTED.set(0)
                self.state.connected = False
                self.state.last_error, self.state.last_error_at = str(exc)[:300], time.time()
                set_mode(None)
                RECONNECTS.inc()
                self._failures += 1
                refused = isinstance(exc, ImapAuthError)
                # A refused login waits the longest: retrying a wrong password quickly
                # gets the account locked (Gmail) or the address penalised (Dovecot).
                delay = self.settings.reconnect_max_s if refused else self._backoff()
                level = logging.ERROR if refused else logging.WARNING
                logger.log(level, "IMAP: session failed (%s); reconnecting in %.1fs", exc, delay)
                await self._sleep(stop, delay, lost)
            finally:
                CONNECTED.set(0)
                self.state.connected = False
                set_mode(None)
                await imap.logout()

    def _backoff(self) -> float:
        """Full jitter: uniform(0, min(cap, base * 2^n)), at least a tenth of base."""
        s = self.settings
        ceiling = min(s.reconnect_max_s, s.reconnect_base_s * 2 ** min(self._failures - 1, 20))
        return max(s.reconnect_base_s / 10, random.uniform(0, ceiling))

    async def _session(self, imap: ImapAdapter, stop: asyncio.Event, lost: asyncio.Event) -> None:
        box = await imap.select(self.settings.imap_mailbox)
        await self._sync_until_quiet(imap, box, time.time())
        if imap.supports_idle and self.settings.imap_use_idle:
            set_mode("idle")
            while True:
                await self._idle_once(imap, box, stop, lost)
        set_mode("poll")
        while True:
            await self._wait_ticks(self.settings.polling_interval_s, stop, lost)
            await imap.noop()
            await self.sync.run(imap, box, time.time())
            self.state.last_sync_at = time.time()

    async def _sync_until_quiet(
        self, imap: ImapAdapter, box: SelectedMailbox, seen_at: float
    ) -> None:
        """Sync until the server reports no mail that arrived during the pass.

        Mail announced in a command's response is not announced again at IDLE,
        so IDLE is entered only once a pass ends with nothing new reported.
        """
        for _ in range(MAX_SYNC_ROUNDS):
            await self.sync.run(imap, box, seen_at)
            self.state.last_sync_at = time.time()
            if not await imap.new_mail_reported():
                return
            seen_at = time.time()

    async def _idle_once(
        self, imap: ImapAdapter, box: SelectedMailbox, stop: asyncio.Event, lost: asyncio.Event
    ) -> None:
        """IDLE until new mail or the renewal is due; then sync until quiet.

        IDLE is also left every polling interval as a backstop: a server that
        drops an EXISTS notification then delays mail by at most that interval.
        """
        await imap.idle_start()
        renew_in = min(self.settings.idle_renew_s, self.settings.polling_interval_s)
        renew_at = time.monotonic() + renew_in
        seen_at = time.time()
        try:
            while time.monotonic() < renew_at:
                responses = await imap.idle_check(min(TICK_S, renew_at - time.monotonic()))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    seen_at = time.time()
                    break
                await self._check_leave(stop, lost)
        except _Leave:
            await imap.idle_done()
            raise
        await imap.idle_done()
        await self._sync_until_quiet(imap, box, seen_at)

    # -- helpers ----------------------------------------------------------------------------
    async def _active(self) -> bool:
        polling = (await self.config.get(PollingConfig)).doc
        reason = PollingSchedule.effective(polling, self.settings).reason_inactive(self.clock())
        self.schedule_checks += 1
        SCHEDULE_ACTIVE.set(1 if reason is None else 0)
        self.state.role = "watching" if reason is None else "inactive"
        if reason != self._inactive_reason:
            if reason is None:
                logger.info("IMAP: polling schedule active")
            else:
                logger.info("IMAP: outside the polling schedule (%s); not watching", reason)
            self._inactive_reason = reason
        return reason is None

    async def _check_leave(self, stop: asyncio.Event, lost: asyncio.Event) -> None:
        if stop.is_set() or lost.is_set() or not await self._active():
            raise _Leave

    async def _wait_ticks(self, seconds: float, stop: asyncio.Event, lost: asyncio.Event) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await self._check_leave(stop, lost)
            await self._sleep(stop, min(TICK_S, left), lost)
        await self._check_leave(stop, lost)

    @staticmethod
    async def _sleep(
        stop: asyncio.Event, seconds: float, lost: asyncio.Event | None = None
    ) -> None:
        """Sleep up to ``seconds``; wake early on stop (or lock loss)."""
        waits = [asyncio.ensure_future(stop.wait())]
        if lost is not None:
            waits.append(asyncio.ensure_future(lost.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
