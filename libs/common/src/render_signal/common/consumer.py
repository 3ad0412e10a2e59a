"""The stream consumer loop (:class:`Consumer`); delivery semantics are in ``streams``.

One consumer-group member reads new entries (bounded BLOCK, stop checked
between reads), re-reads its own pending entries at start, takes over the
pending entries of members whose liveness key is gone (a sweep every second,
beside the reading loop), retries failed entries once idle, dead-letters what
fails too often, and drains on stop, handing back what it never started.

Reading never waits long for a whole batch: the next read waits until the
entries in hand are finished, or ``read_ahead_s`` at most, then takes as many
as ``batch_size`` leaves room for. Why: a batch read used to wait for its
slowest entry, so one long handler (a Worker copy of a large file, a receiver
near its timeout) held back every email that arrived after it. Waiting for
quick ones still lets entries that arrived meanwhile come in one read (a read
always outstanding took them one by one: about one more round trip per
entry). The handled entries' XACK goes in the same round trip as the next
read (or before a reclaim sweep, or at stop).
(Over 300 lines: the loop and its failure paths read best together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from render_signal.common.errors import MalformedEvent, PermanentError
from render_signal.common.events import decode_entry, event_fields
from render_signal.common.keys import Keys
from render_signal.common.liveness import Liveness
from render_signal.common.redisclient import DEFAULT_BLOCK_MS
from render_signal.common.redismux import MultiplexedRedis
from render_signal.common.streams import (
    DLQ_MAXLEN,
    ENTRIES,
    HANDLER_SECONDS,
    LAST_LOOP,
    TAKEN_OVER,
    Delivery,
    E,
    Entry,
    ensure_group,
    trim_acknowledged,
)

__all__ = ["Consumer", "Handler"]

logger = logging.getLogger(__name__)


Handler = Callable[[E, Delivery], Awaitable[None]]

#: Appended to a stopping member's name for the entries it hands back: a name
#: without a liveness key, so live replicas take them over at their next sweep.
HANDBACK = ":handback"

# KEYS: stream, the holder's liveness key. ARGV: group, holder, claimer, count.
# Atomic, so a holder that (re)writes its key before reading can never have an
# entry taken from under it: either the claim happened first (the holder's own
# re-read no longer sees the entry) or the key exists and nothing is claimed.
# A dead holder with nothing left is removed from the group: names of replaced
# pods and containers would otherwise pile up in XINFO CONSUMERS.
_TAKE_OVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]), ARGV[2])
if #pending == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return {}
end
local ids = {}
for i, row in ipairs(pending) do
  ids[i] = row[1]
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
"""


class Consumer(Generic[E]):
    """A consumer-group member running ``handler`` for each entry of one stream.

    Args:
        redis: client whose socket timeout exceeds ``block_ms``.
        stream_key: full stream key (prefix included).
        group: consumer group, the service name.
        consumer: stable consumer name for this replica.
        event_type: the event struct expected on this stream.
        handler: coroutine called per entry; raise to retry, raise
            :class:`PermanentError` to dead-letter at once.
        batch_size: most entries in hand at once (and the COUNT of a read).
        concurrency: entries handled at once.
        block_ms: BLOCK per read; keeps the stop check responsive.
        claim_idle_ms: idle time after which a pending entry is reclaimed (and
            a failed one retried).
        read_ahead_s: how long entries in hand may run before the next read
            goes ahead without them (module docstring).
        max_deliveries: deliveries before dead-lettering.
        liveness: this process's liveness (``consumer`` must be its owner name).
            With it, the consumer reads only once the key exists and takes over
            the pending entries of members whose key is gone, every
            ``takeover_interval_s``; without it (tests of one consumer), only
            idle entries are reclaimed.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        stream_key: str,
        group: str,
        consumer: str,
        event_type: type[E],
        handler: Handler[E],
        batch_size: int = 16,
        concurrency: int = 1,
        block_ms: int = DEFAULT_BLOCK_MS,
        claim_idle_ms: int = 30_000,
        claim_interval_s: float | None = None,
        read_ahead_s: float = 0.25,
        max_deliveries: int = 5,
        trim_interval_s: float = 1.0,
        liveness: Liveness | None = None,
        takeover_interval_s: float = 1.0,
    ) -> None:
        if liveness is not None and liveness.owner != consumer:
            raise ValueError(f"consumer {consumer!r} is not the liveness owner {liveness.owner!r}")
        self.redis = redis
        #: The blocking reads' own connection (issue 16: off redis-py's pool path).
        self._reads: Redis = redis.lane() if isinstance(redis, MultiplexedRedis) else redis
        self.stream_key = stream_key
        self.group = group
        self.consumer = consumer
        self.event_type: type[E] = event_type
        self.handler: Handler[E] = handler
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval_s = (
            claim_interval_s if claim_interval_s is not None else max(claim_idle_ms / 2000, 0.05)
        )
        self.read_ahead_s = read_ahead_s
        self.max_deliveries = max_deliveries
        self.trim_interval_s = trim_interval_s
        self._last_trim = time.monotonic()
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._last_seen_id = "0-0"
        self._last_claim = 0.0
        self._errors_key = Keys.stream_errors(stream_key)
        self._label = Keys.stream_name(stream_key)
        self.handled = 0
        self.liveness = liveness
        self.takeover_interval_s = takeover_interval_s
        self._take_over = redis.register_script(_TAKE_OVER)
        #: Entries taken over from members whose liveness key was gone.
        self.taken_over = 0
        self._taken_running = 0  # taken-over entries being handled
        #: Ids handled by the reading loop's tasks and not yet acked: acked in the
        #: same round trip as the next read (one fewer per entry).
        self._acks: list[bytes] = []
        #: The reading loop's entries in hand (read, not finished): task -> (id,
        #: deliveries); ``_started`` has those holding a handler slot.
        self._reading: dict[asyncio.Future[bytes | None], tuple[bytes, int]] = {}
        self._started: set[bytes] = set()

    # -- public -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 20.0) -> None:
        """Consume until ``stop`` is set, then drain the entries in hand and return."""
        sweeper: asyncio.Task[None] | None = None
        if self.liveness is not None:
            if not await self.liveness.wait_established(stop):
                return
            sweeper = asyncio.create_task(self._sweep_dead(stop, drain_timeout_s))
        try:
            await self._consume(stop, drain_timeout_s)
        finally:
            if sweeper is not None:
                await sweeper
            if self._reads is not self.redis:
                await self._reads.aclose()
        logger.info("STREAMS: consumer %s on %s stopped", self.consumer, self._label)

    async def _consume(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        backoff = 0.1
        own_pending_done = False
        while not stop.is_set():
            try:
                if not own_pending_done:
                    await ensure_group(self.redis, self.stream_key, self.group)
                    # Handled entries whose XACK waited for the next read are still in
                    # our PEL: acked first, or the drain would handle them again.
                    await self._ack_handled()
                    await self._drain_own_pending(stop)
                    own_pending_done = True
                await self._reclaim_if_due(stop)
                await self._wait_for_room(stop)
                room = self.batch_size - len(self._reading)
                if room > 0 and not stop.is_set():
                    self._start(await self._read_new(stop, room))
                LAST_LOOP.labels(self._label).set(time.time())
                if time.monotonic() - self._last_trim >= self.trim_interval_s:
                    self._last_trim = time.monotonic()
                    await trim_acknowledged(self.redis, self.stream_key)
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._acks = []  # the group is new: its entries are read again anyway
                    await self._recreate_group()
                    continue
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning(
                    "STREAMS: redis unavailable on %s (%s); retrying in %.1fs",
                    self._label,
                    type(exc).__name__,
                    backoff,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 5.0)
                own_pending_done = False  # re-check the group after a Redis restart
        await self._drain_reading(drain_timeout_s)
        await self._flush_acks()

    async def _ack_handled(self) -> None:
        """XACK the handled entries still waiting for the next read to carry it."""
        acks, self._acks = self._acks, []
        if acks:
            try:
                await self.redis.xack(self.stream_key, self.group, *acks)
            except BaseException:
                self._acks = acks + self._acks  # XACK is idempotent: sent again later
                raise

    async def _flush_acks(self) -> None:
        """Ack what the reading loop handled (stopping: no next read to carry it)."""
        try:
            await self._ack_handled()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Left pending: handled again after a restart or takeover (handlers are
            # idempotent, as for any crash between a handler and its ack).
            logger.warning(
                "STREAMS: could not ack %d handled entries on %s at stop (%s)",
                len(self._acks),
                self._label,
                type(exc).__name__,
            )

    # -- takeover -------------------------------------------------------------------
    async def _sweep_dead(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Beside the reading loop, so a long batch never delays a takeover; the
        entries taken over are handled in tasks of their own for the same reason
        (a dead member's second batch is claimed while its first still runs)."""
        handling: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                try:
                    await self.take_over_dead(stop, drain_timeout_s, handling)
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):  # the reading loop recreates the group
                        raise
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    pass  # the reading loop reports Redis outages
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.takeover_interval_s)
        finally:
            if handling:
                await asyncio.gather(*handling, return_exceptions=True)

    async def take_over_dead(
        self,
        stop: asyncio.Event,
        drain_timeout_s: float = 20.0,
        handling: set[asyncio.Task[None]] | None = None,
    ) -> int:
        """Claim the pending entries of members without a liveness key and handle them.

        With ``handling``, each claimed batch is handled in a task added to it
        (and removed when done); otherwise here. Claiming pauses while
        ``4 × batch_size`` taken-over entries are still being handled: they are
        safe in this member's PEL meanwhile, but there is no point in holding
        more than can run. Returns how many entries were taken over.
        """
        assert self.liveness is not None
        rows: Any = await self.redis.xinfo_consumers(self.stream_key, self.group)
        total = 0
        for row in rows:
            name = row["name"].decode() if isinstance(row["name"], bytes) else str(row["name"])
            if name == self.consumer:
                continue
            while not stop.is_set() and self._taken_running < 4 * self.batch_size:
                claimed: Any = await self._take_over(
                    keys=[self.stream_key, self.liveness.key_for(name)],
                    args=[self.group, name, self.consumer, self.batch_size],
                )
                if claimed is None:
                    break  # alive: its entries are its own, however long they take
                # Redis 7 drops entries trimmed meanwhile from the reply; 6.2 returns nil.
                live = [_entry(item) for item in claimed if item and item[1]]
                if live:
                    total += len(live)
                    self.taken_over += len(live)
                    TAKEN_OVER.labels(self._label).inc(len(live))
                    logger.warning(
                        "STREAMS: took over %d pending entries of %s on %s (no liveness key)",
                        len(live),
                        name,
                        self._label,
                    )
                    self._taken_running += len(live)  # now, so this very pass respects the cap
                    work = self._handle_taken(live, stop, drain_timeout_s)
                    if handling is None:
                        await work
                    else:
                        task = asyncio.create_task(work)
                        handling.add(task)
                        task.add_done_callback(handling.discard)
                if len(claimed) < self.batch_size:
                    break
        return total

    async def _handle_taken(
        self, entries: list[Entry], stop: asyncio.Event, drain_timeout_s: float
    ) -> None:
        try:
            await self._handle_batch(entries, stop, drain_timeout_s)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # They stay in this member's PEL: retried once idle (claim_idle_ms).
            logger.warning(
                "STREAMS: taken-over entries on %s wait for a retry (%s)",
                self._label,
                type(exc).__name__,
            )
        finally:
            self._taken_running -= len(entries)

    # -- reading --------------------------------------------------------------------
    async def _ack_and_read(self, acks: list[bytes], count: int) -> Any:
        """XACK of ``acks`` and the next XREADGROUP in one round trip (issue 16)."""
        async with self._reads.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream_key, self.group, *acks)
            pipe.xreadgroup(
                self.group,
                self.consumer,
                {self.stream_key: ">"},
                count=count,
                block=self.block_ms,
            )
            replies: list[Any] = await pipe.execute()
        return replies[1]

    async def _read_new(
        self, stop: asyncio.Event, count: int
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        # Taken now: entries finished during the read add to a fresh list.
        acks, self._acks = self._acks, []
        read = asyncio.ensure_future(
            self._ack_and_read(acks, count)
            if acks
            else self._reads.xreadgroup(
                self.group,
                self.consumer,
                {self.stream_key: ">"},
                count=count,
                block=self.block_ms,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        read_done = False
        try:
            done, _ = await asyncio.wait({read, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:
                # Stopping: abandon the read. Anything the server delivered meanwhile
                # stays in our PEL and is re-read at the next start (stable name).
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await read
                return []
            response: Any = read.result()
            read_done = True
        finally:
            stopper.cancel()
            if not read_done:
                self._acks = acks + self._acks  # maybe not sent: XACK is idempotent
        if not response:
            return []
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        for _stream, items in response:
            entries.extend(items)
        return entries

    def _start(
        self,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        counts: dict[bytes, int] | None = None,
    ) -> None:
        """Handle entries in tasks of their own (acked as each finishes): newly read
        ones, or with ``counts`` (their deliveries) reclaimed ones."""
        for entry_id, fields in entries:
            deliveries = counts.get(entry_id, 1) if counts is not None else 1
            task = asyncio.ensure_future(
                self._handle_one(entry_id, fields, deliveries, self._started)
            )
            self._reading[task] = (entry_id, deliveries)
            task.add_done_callback(self._finished)
        if entries and counts is None:
            last = entries[-1][0]
            self._last_seen_id = last.decode() if isinstance(last, bytes) else str(last)

    def _finished(self, task: asyncio.Future[bytes | None]) -> None:
        entry_id, _ = self._reading.pop(task)
        self._started.discard(entry_id)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # Redis failed under the handler's own writes: the entry stays pending
            # and is retried once idle (claim_idle_ms), as after a crash.
            logger.warning(
                "STREAMS: entry %s on %s left pending (%s)",
                entry_id.decode(),
                self._label,
                type(error).__name__,
            )
            return
        acked = task.result()
        if acked is not None:
            self._acks.append(acked)

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        """Before a read: until the entries in hand are finished, or ``read_ahead_s``
        (with ``batch_size`` in hand: one of them, or one BLOCK's time, so the loop
        still reports itself and reclaims), or stop."""
        if not self._reading:
            return
        full = len(self._reading) >= self.batch_size
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        in_hand = asyncio.ensure_future(
            asyncio.wait(
                set(self._reading),
                return_when=asyncio.FIRST_COMPLETED if full else asyncio.ALL_COMPLETED,
            )
        )
        try:
            await asyncio.wait(
                {in_hand, stopper},
                timeout=self.block_ms / 1000 if full else self.read_ahead_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopper.cancel()
            in_hand.cancel()

    def _busy(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> set[bytes]:
        """Those of ``entries`` in hand, or handled with their XACK still to go: a
        re-read or a reclaim must leave them alone (they would run twice)."""
        busy = {entry_id for entry_id, _ in self._reading.values()}
        busy.update(self._acks)
        return {entry_id for entry_id, _ in entries if entry_id in busy}

    async def _drain_reading(self, drain_timeout_s: float) -> None:
        """Stopping: the reading loop's unfinished entries wind down (``_wind_down``)."""
        tasks = {t: v for t, v in self._reading.items() if not t.done()}
        if tasks:
            await self._wind_down(tasks, self._started, drain_timeout_s)

    async def _drain_own_pending(self, stop: asyncio.Event) -> None:
        """Re-read entries delivered to this consumer name before a restart (or a
        Redis outage), into hand like new entries."""
        start = "0"
        while not stop.is_set():
            await self._wait_for_room(stop)
            room = self.batch_size - len(self._reading)
            if room <= 0:
                continue
            response: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream_key: start}, count=room
            )
            items = response[0][1] if response else []
            # Entries trimmed away come back as (id, None/{}): ack them, nothing to do.
            # Entries the reading loop still handles (a re-check after a Redis outage)
            # are left to it.
            busy = self._busy(items)
            live = [(i, f) for i, f in items if f and i not in busy]
            gone = [i for i, f in items if not f and i not in busy]
            if gone:
                await self.redis.xack(self.stream_key, self.group, *gone)
            if not items:
                return
            if live:
                logger.info(
                    "STREAMS: re-reading %d own pending entries on %s", len(live), self._label
                )
                self._start(live, await self._delivery_counts(live))
            last = items[-1][0]
            start = last.decode() if isinstance(last, bytes) else str(last)

    async def _reclaim_if_due(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        if now - self._last_claim < self.claim_interval_s:
            return
        self._last_claim = now
        # Handled entries waiting for the next read's ack look idle to XAUTOCLAIM.
        await self._ack_handled()
        cursor = "0-0"
        for _ in range(10):  # bounded: one sweep per interval
            room = self.batch_size - len(self._reading)
            if room <= 0:
                return  # the rest waits for the next sweep
            result: Any = await self.redis.xautoclaim(
                self.stream_key,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=cursor,
                count=room,
            )
            # Redis 7 replies (next, entries, deleted); 6.2 replies (next, entries).
            next_id, claimed = result[0], result[1]
            # An entry in hand that waited longer than claim_idle_ms for a handler
            # slot looks idle too: it is being handled, not lost.
            busy = self._busy(claimed)
            live = [(i, f) for i, f in claimed if f and i not in busy]
            if live:
                logger.info(
                    "STREAMS: reclaimed %d idle pending entries on %s", len(live), self._label
                )
                # In hand like new entries: a slow retry holds back nothing either.
                self._start(live, await self._delivery_counts(live))
            cursor = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
            if cursor == "0-0" or stop.is_set():
                return

    # -- handling -------------------------------------------------------------------
    async def _handle_batch(
        self,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        stop: asyncio.Event,
        drain_timeout_s: float,
    ) -> None:
        """Handle entries taken over from a dead member, and ack them."""
        counts = await self._delivery_counts(entries)
        started: set[bytes] = set()
        by_task: dict[asyncio.Future[bytes | None], tuple[bytes, int]] = {
            asyncio.ensure_future(
                self._handle_one(entry_id, fields, counts.get(entry_id, 1), started)
            ): (entry_id, counts.get(entry_id, 1))
            for entry_id, fields in entries
        }
        stopper = asyncio.ensure_future(stop.wait())
        pending: set[asyncio.Future[Any]] = set(by_task)
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopper)
                if stopper in done:
                    break
        finally:
            stopper.cancel()
        if pending:
            await self._wind_down({t: by_task[t] for t in pending}, started, drain_timeout_s)
        acks: list[bytes] = [
            result
            for t in by_task
            if t.done() and not t.cancelled() and (result := t.result()) is not None
        ]
        if acks:
            await self.redis.xack(self.stream_key, self.group, *acks)

    async def _wind_down(
        self,
        tasks: dict[asyncio.Future[bytes | None], tuple[bytes, int]],
        started: set[bytes],
        drain_timeout_s: float,
    ) -> None:
        """Stopping with ``tasks`` unfinished: entries still waiting for a handler
        slot are not started but handed back now; the others get the drain budget."""
        unstarted = [v for v in tasks.values() if v[0] not in started]
        for task, (entry_id, _) in tasks.items():
            if entry_id not in started:
                task.cancel()
        if unstarted:
            try:
                await self._hand_back(unstarted)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # Still in this member's PEL: taken over once its liveness key goes.
                logger.warning(
                    "STREAMS: could not hand back %d entries on %s (%s)",
                    len(unstarted),
                    self._label,
                    type(exc).__name__,
                )
        running = [t for t, (entry_id, _) in tasks.items() if entry_id in started]
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=drain_timeout_s)
        for task in late:
            task.cancel()
        if late:
            logger.warning(
                "STREAMS: %d entries on %s still running at the drain deadline;"
                " left pending for redelivery",
                len(late),
                self._label,
            )
            await asyncio.wait(late)

    async def _delivery_counts(
        self, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> dict[bytes, int]:
        first, last = entries[0][0], entries[-1][0]
        rows: Any = await self.redis.xpending_range(
            self.stream_key, self.group, min=first, max=last, count=len(entries) * 4 + 10
        )
        counts: dict[bytes, int] = {}
        for row in rows:
            message_id = row["message_id"]
            key = message_id if isinstance(message_id, bytes) else str(message_id).encode()
            counts[key] = int(row["times_delivered"])
        return counts

    async def _hand_back(self, unstarted: list[tuple[bytes, int]]) -> None:
        """Give entries this member will not start (stopping) to the others, at once.

        With liveness they move to ``<consumer>:handback``, a member name that
        never has a liveness key: live replicas take them over at their next
        sweep, while this process still drains what it started. Without
        liveness they stay here, for a restart under the same name. Either way
        their delivery count is set back (XCLAIM JUSTID RETRYCOUNT changes
        nothing else), so being handed back during a scale-down never brings
        an entry closer to the dead-letter stream.
        """
        owner = f"{self.consumer}{HANDBACK}" if self.liveness is not None else self.consumer
        by_count: dict[int, list[bytes | str | int | memoryview]] = {}
        for entry_id, deliveries in unstarted:
            by_count.setdefault(max(0, deliveries - 1), []).append(entry_id)
        for count, ids in by_count.items():
            await self.redis.xclaim(
                self.stream_key,
                self.group,
                owner,
                0,
                ids,
                retrycount=count,
                justid=True,
            )
        logger.info(
            "STREAMS: %d unstarted entries on %s handed back at stop", len(unstarted), self._label
        )

    async def _handle_one(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        deliveries: int,
        started: set[bytes],
    ) -> bytes | None:
        """Run the handler; return the id to ack, or None to leave it pending.

        ``started`` gets the entry once it holds a handler slot: until then,
        stopping may take it back (:meth:`_wind_down`).
        """
        async with self._semaphore:
            started.add(entry_id)
            entry = entry_id.decode()
            try:
                event = decode_entry(fields, self.event_type)
            except MalformedEvent as exc:
                await self._dead_letter(entry_id, fields, f"malformed: {exc}", deliveries)
                ENTRIES.labels(self._label, "malformed").inc()
                return entry_id
            if deliveries > self.max_deliveries:
                previous: Any = await self.redis.hget(self._errors_key, entry)
                reason = previous.decode() if previous else "unknown error"
                await self._dead_letter(entry_id, fields, reason, deliveries - 1)
                ENTRIES.labels(self._label, "dead_lettered").inc()
                return entry_id
            began = time.perf_counter()
            try:
                await self.handler(event, Delivery(entry, deliveries, self.stream_key))
            except PermanentError as exc:
                await self._dead_letter(entry_id, fields, f"permanent: {exc}", deliveries)
                ENTRIES.labels(self._label, "dead_lettered").inc()
                return entry_id
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Retryable: leave pending; XAUTOCLAIM redelivers it after claim_idle_ms.
                text = f"{type(exc).__name__}: {exc}"[:2000]
                await self.redis.hset(self._errors_key, entry, text)
                ENTRIES.labels(self._label, "failed").inc()
                logger.warning(
                    "STREAMS: handler failed on %s entry %s (delivery %d/%d): %s",
                    self._label,
                    entry,
                    deliveries,
                    self.max_deliveries,
                    text,
                )
                if deliveries >= self.max_deliveries:
                    await self._dead_letter(entry_id, fields, text, deliveries)
                    ENTRIES.labels(self._label, "dead_lettered").inc()
                    return entry_id
                return None
            finally:
                HANDLER_SECONDS.labels(self._label).observe(time.perf_counter() - began)
            if deliveries > 1:
                await self.redis.hdel(self._errors_key, entry)
            ENTRIES.labels(self._label, "handled").inc()
            self.handled += 1
            return entry_id

    async def _dead_letter(
        self, entry_id: bytes, fields: dict[bytes, bytes], error: str, deliveries: int
    ) -> None:
        entry = entry_id.decode()
        record: dict[Any, Any] = {
            **event_fields(fields),
            "error": error[:2000],
            "source_stream": self.stream_key,
            "source_id": entry,
            "group": self.group,
            "deliveries": deliveries,
            "failed_at": time.time(),
        }
        await self.redis.xadd(
            Keys.dlq(self.stream_key), record, maxlen=DLQ_MAXLEN, approximate=True
        )
        await self.redis.hdel(self._errors_key, entry)
        logger.error(
            "STREAMS: entry %s on %s dead-lettered after %d deliveries: %s",
            entry,
            self._label,
            deliveries,
            error[:300],
        )

    async def _recreate_group(self) -> None:
        """NOGROUP: recreate at the last entry we saw (no replay, no skip)."""
        start = self._last_seen_id if self._last_seen_id != "0-0" else "0"
        created = await ensure_group(self.redis, self.stream_key, self.group, start_id=start)
        logger.warning(
            "STREAMS: group %s on %s was missing; %s at %s",
            self.group,
            self._label,
            "recreated" if created else "found again",
            start,
        )


def _entry(item: Any) -> Entry:
    """A ``[id, [field, value, ...]]`` reply (Lua returns XCLAIM's raw shape) as an Entry."""
    entry_id, flat = item[0], item[1]
    return entry_id, dict(zip(flat[0::2], flat[1::2], strict=True))
