"""The stream consumer loop (:class:`Consumer`); delivery semantics are in ``streams``.

One consumer-group member reads new entries (bounded BLOCK, stop checked
between reads), re-reads its own pending entries at start, reclaims idle ones
of dead members, dead-letters what fails too often, and drains on stop.
(Slightly over 300 lines: the loop and its failure paths read best together.)
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
from render_signal.common.events import decode_entry
from render_signal.common.keys import Keys
from render_signal.common.redisclient import DEFAULT_BLOCK_MS
from render_signal.common.streams import (
    DLQ_MAXLEN,
    ENTRIES,
    HANDLER_SECONDS,
    LAST_LOOP,
    Delivery,
    E,
    ensure_group,
    trim_acknowledged,
)

__all__ = ["Consumer", "Handler"]

logger = logging.getLogger(__name__)


Handler = Callable[[E, Delivery], Awaitable[None]]


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
        batch_size: COUNT per XREADGROUP.
        concurrency: entries of one batch handled at once.
        block_ms: BLOCK per read; keeps the stop check responsive.
        claim_idle_ms: idle time after which a pending entry is reclaimed (and
            a failed one retried).
        max_deliveries: deliveries before dead-lettering.
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
        max_deliveries: int = 5,
        trim_interval_s: float = 10.0,
    ) -> None:
        self.redis = redis
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
        self.max_deliveries = max_deliveries
        self.trim_interval_s = trim_interval_s
        self._last_trim = time.monotonic()
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._last_seen_id = "0-0"
        self._last_claim = 0.0
        self._errors_key = Keys.stream_errors(stream_key)
        self._label = Keys.stream_name(stream_key)
        self.handled = 0

    # -- public -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 20.0) -> None:
        """Consume until ``stop`` is set, then drain the in-flight batch and return."""
        backoff = 0.1
        own_pending_done = False
        while not stop.is_set():
            try:
                if not own_pending_done:
                    await ensure_group(self.redis, self.stream_key, self.group)
                    await self._drain_own_pending(stop, drain_timeout_s)
                    own_pending_done = True
                await self._reclaim_if_due(stop, drain_timeout_s)
                entries = await self._read_new(stop)
                LAST_LOOP.labels(self._label).set(time.time())
                if entries:
                    await self._handle_batch(entries, stop, drain_timeout_s)
                if time.monotonic() - self._last_trim >= self.trim_interval_s:
                    self._last_trim = time.monotonic()
                    await trim_acknowledged(self.redis, self.stream_key)
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
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
        logger.info("STREAMS: consumer %s on %s stopped", self.consumer, self._label)

    # -- reading --------------------------------------------------------------------
    async def _read_new(self, stop: asyncio.Event) -> list[tuple[bytes, dict[bytes, bytes]]]:
        read = asyncio.ensure_future(
            self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream_key: ">"},
                count=self.batch_size,
                block=self.block_ms,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({read, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if read not in done:
            # Stopping: abandon the read. Anything the server delivered meanwhile
            # stays in our PEL and is re-read at the next start (stable name).
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read
            return []
        stopper.cancel()
        response: Any = read.result()
        if not response:
            return []
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        for _stream, items in response:
            entries.extend(items)
        return entries

    async def _drain_own_pending(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Re-read entries delivered to this consumer name before a restart."""
        start = "0"
        while not stop.is_set():
            response: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream_key: start}, count=self.batch_size
            )
            items = response[0][1] if response else []
            # Entries trimmed away come back as (id, None/{}): ack them, nothing to do.
            live = [(i, f) for i, f in items if f]
            gone = [i for i, f in items if not f]
            if gone:
                await self.redis.xack(self.stream_key, self.group, *gone)
            if not items:
                return
            if live:
                logger.info(
                    "STREAMS: re-reading %d own pending entries on %s", len(live), self._label
                )
                await self._handle_batch(live, stop, drain_timeout_s, redelivered=True)
            last = items[-1][0]
            start = last.decode() if isinstance(last, bytes) else str(last)

    async def _reclaim_if_due(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        now = time.monotonic()
        if now - self._last_claim < self.claim_interval_s:
            return
        self._last_claim = now
        cursor = "0-0"
        for _ in range(10):  # bounded: one sweep per interval
            result: Any = await self.redis.xautoclaim(
                self.stream_key,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=cursor,
                count=self.batch_size,
            )
            # Redis 7 replies (next, entries, deleted); 6.2 replies (next, entries).
            next_id, claimed = result[0], result[1]
            live = [(i, f) for i, f in claimed if f]
            if live:
                logger.info(
                    "STREAMS: reclaimed %d idle pending entries on %s", len(live), self._label
                )
                await self._handle_batch(live, stop, drain_timeout_s, redelivered=True)
            cursor = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
            if cursor == "0-0" or stop.is_set():
                return

    # -- handling -------------------------------------------------------------------
    async def _handle_batch(
        self,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        stop: asyncio.Event,
        drain_timeout_s: float,
        *,
        redelivered: bool = False,
    ) -> None:
        counts = await self._delivery_counts(entries) if redelivered else {}
        tasks = [
            asyncio.ensure_future(self._handle_one(entry_id, fields, counts.get(entry_id, 1)))
            for entry_id, fields in entries
        ]
        stopper = asyncio.ensure_future(stop.wait())
        pending: set[asyncio.Future[Any]] = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopper)
                if stopper in done:
                    break
            if pending:
                # Stop requested mid-batch: give the in-flight entries the drain budget.
                _, late = await asyncio.wait(pending, timeout=drain_timeout_s)
                for task in late:
                    task.cancel()
                if late:
                    logger.warning(
                        "STREAMS: %d entries on %s still running at the drain deadline;"
                        " left pending for redelivery",
                        len(late),
                        self._label,
                    )
        finally:
            stopper.cancel()
        acks: list[bytes] = [
            result
            for t in tasks
            if t.done() and not t.cancelled() and (result := t.result()) is not None
        ]
        if acks:
            await self.redis.xack(self.stream_key, self.group, *acks)
        if not redelivered:
            last = entries[-1][0]
            self._last_seen_id = last.decode() if isinstance(last, bytes) else str(last)

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

    async def _handle_one(
        self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int
    ) -> bytes | None:
        """Run the handler; return the id to ack, or None to leave it pending."""
        async with self._semaphore:
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
            started = time.perf_counter()
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
                HANDLER_SECONDS.labels(self._label).observe(time.perf_counter() - started)
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
            "type": fields.get(b"type", b""),
            "data": fields.get(b"data", b""),
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
