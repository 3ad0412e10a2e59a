"""Coalesced writes to the links file (``WEBHOOK_LINKS_FILE``).

Writing the file is a locked read-modify-write of the whole array with two
fsyncs; doing it once per email made it the most expensive part of offload.
:class:`LinksFileWriter` collects new rows and writes them in **one**
``LinksFile.append`` (``common.linkjournal``: same lock, dedup, cap and atomic
replace) at most every ``interval_s`` after the first pending row, or at once
when ``max_batch`` rows are pending.

Durability (nothing is lost on a crash):

* The Redis link journal (the source of truth for reuse, and what the
  dashboard reads alongside the file) is still written per link before the
  email is published.
* In the **same** MULTI as that journal write, the file row is *staged* in the
  hash ``<prefix>offload:links:unfiled`` (field = the file's dedup
  key ``source_url\\nr2_url\\nprovider``, value = the row as JSON). After a
  flush has replaced the file, the flushed fields are deleted (one HDEL per
  flush).
* On start (:meth:`recover`, before the consumer reads anything), rows still
  staged -- a crash, SIGKILL or drain deadline hit between the publish and the
  flush -- are appended to the file (oldest first; dedup makes a repeat of an
  already-written row a no-op) and unstaged. The hash is shared by all
  replicas (container host names, hence instance names, change on recreate),
  which share the file like the gateway that reads it: a replica starting
  while another runs may write the other's pending rows first; the other's
  own flush of them is then a dedup no-op.
* On shutdown (:meth:`aclose`, called when the consumer has drained) the
  pending rows are flushed.

So a row is missing from the file only while it is pending (at most
``interval_s`` plus one write), or if both the Redis journal write *and* the
process failed before the flush (the row was then never in Redis either).
A failed file write (``OSError``) is logged and retried at the next interval;
the old per-email code dropped the row instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.linkjournal import LinkRecord, LinksFile

__all__ = ["LinksFileWriter", "dedup_field"]

logger = logging.getLogger(__name__)

_row_decoder = msgspec.json.Decoder(LinkRecord)


def dedup_field(row: LinkRecord) -> str:
    """The file's dedup key ``(source_url, r2_url, provider)`` as one hash field."""
    return "\n".join(row.file_key())


class LinksFileWriter:
    """One writer task per process: ``submit`` rows, flushed together.

    Args:
        links_file: the file (its lock, dedup, cap and atomic write are used as is).
        redis: client for the staging hash.
        staged_key: full key of the staging hash.
        interval_s: longest a row waits before its flush starts.
        max_batch: pending rows that trigger a flush at once.
        max_pending: bound on rows kept in memory while writes keep failing
            (the oldest are dropped from memory; they stay staged in Redis).
    """

    def __init__(
        self,
        links_file: LinksFile,
        redis: Redis,
        staged_key: str,
        *,
        interval_s: float = 0.2,
        max_batch: int = 256,
        max_pending: int = 10_000,
    ) -> None:
        self.links_file = links_file
        self.redis = redis
        self.staged_key = staged_key
        self.interval_s = interval_s
        self.max_batch = max(1, max_batch)
        self.max_pending = max(self.max_batch, max_pending)
        self._pending: list[LinkRecord] = []
        self._first_pending_at = 0.0
        self._signal = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0
        self.failures = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- producer side ---------------------------------------------------------------
    def stage(self, pipe: Pipeline, row: LinkRecord) -> None:
        """Add the staging HSET for ``row`` to ``pipe`` (the journal's MULTI)."""
        pipe.hset(self.staged_key, dedup_field(row), msgspec.json.encode(row))

    def submit(self, rows: list[LinkRecord]) -> None:
        """Queue ``rows`` for the next flush (never blocks, never raises)."""
        if not rows:
            return
        if not self._pending:
            self._first_pending_at = time.monotonic()
            self._signal.set()
        self._pending.extend(rows)
        if len(self._pending) >= self.max_batch:
            self._signal.set()
        if len(self._pending) > self.max_pending:
            dropped = len(self._pending) - self.max_pending
            del self._pending[:dropped]
            logger.warning(
                "LINKS: %d pending rows dropped from memory (file writes failing);"
                " they stay staged in Redis for the next start",
                dropped,
            )

    # -- lifecycle -------------------------------------------------------------------
    async def recover(self) -> int:
        """Append rows staged by an earlier run that never reached the file."""
        try:
            raw: Any = await self.redis.hgetall(self.staged_key)
        except Exception as exc:
            logger.warning("LINKS: could not read staged rows: %s", type(exc).__name__)
            return 0
        if not raw:
            return 0
        rows: list[tuple[bytes, LinkRecord]] = []
        for field, value in raw.items():
            try:
                rows.append((field, _row_decoder.decode(value)))
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
        rows.sort(key=lambda item: item[1].created_at)
        added = 0
        if rows:
            try:
                added = await asyncio.to_thread(self.links_file.append, [r for _, r in rows])
            except OSError as exc:
                logger.warning("LINKS: could not write %s: %s", self.links_file.path, exc)
                return 0
        await self._unstage(list(raw))
        logger.info("LINKS: recovered %d staged row(s), %d new in the file", len(rows), added)
        return added

    def start(self) -> None:
        """Start the writer task (call once, after :meth:`recover`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="links-file-writer")

    async def aclose(self) -> None:
        """Flush what is pending and stop the task."""
        self._closing = True
        self._signal.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
        elif self._pending:
            await self._flush()

    async def flush(self) -> None:
        """Write the pending rows now (also used by tests and shutdown)."""
        await self._flush()

    # -- writer task ---------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._signal.clear()
                await self._signal.wait()
                continue
            # Collect rows until the window closes, the batch is full, or we stop.
            while not self._closing and len(self._pending) < self.max_batch:
                remaining = self._first_pending_at + self.interval_s - time.monotonic()
                if remaining <= 0:
                    break
                self._signal.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.wait(), remaining)
            ok = await self._flush()
            if not ok and self._closing:
                return  # rows stay staged in Redis; the next start recovers them

    async def _flush(self) -> bool:
        if not self._pending:
            return True
        batch, self._pending = self._pending, []
        try:
            added = await asyncio.to_thread(self.links_file.append, batch)
        except OSError as exc:
            self.failures += 1
            logger.warning("LINKS: could not write %s: %s", self.links_file.path, exc)
            self._pending[:0] = batch  # retried at the next interval, order kept
            self._first_pending_at = time.monotonic()
            return False
        self.flushes += 1
        self.written += added
        await self._unstage([dedup_field(row) for row in batch])
        return True

    async def _unstage(self, fields: list[bytes] | list[str]) -> None:
        try:
            for start in range(0, len(fields), 1000):
                await self.redis.hdel(self.staged_key, *fields[start : start + 1000])
        except Exception as exc:  # harmless: a later recover re-appends (dedup) and unstages
            logger.warning("LINKS: could not unstage flushed rows: %s", type(exc).__name__)
