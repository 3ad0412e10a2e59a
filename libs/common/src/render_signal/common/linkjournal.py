"""Offloaded links: one record, kept in Redis (for reuse) and in the original's JSON file.

:class:`LinkRecord` is the original's ``webhook_links.json`` row: ``source_url``
(the normalised source link), ``r2_url``, ``provider``, ``created_at`` (UTC ISO
8601) and ``original_filename`` when the Worker returned one; **no** ``email_id``.
Its writers are offload (each successful copy) and the gateway's legacy import;
:func:`check_imported` holds imported rows to the rules written rows follow.

* :class:`LinkJournal` -- Redis: hash ``<prefix>offload:links`` (source URL ->
  record JSON) and ZSET ``<prefix>offload:links:index`` (source URL by creation
  time). R2 objects expire (the Worker stores ``expiresAt``; a cron deletes
  them), so a record is reused only while younger than ``max_age_s``; older
  ones are ignored on read and pruned on write, at most once per
  ``prune_interval_s``.
* :class:`LinksFile` -- the file ``WEBHOOK_LINKS_FILE``: a UTF-8 JSON array,
  oldest first, pretty-printed (indent 2). Strict dedup on
  ``(source_url, r2_url, provider)``; only the last ``R2_LINKS_MAX_ENTRIES``
  rows are kept. Writers take an exclusive ``fcntl.flock`` on ``<file>.lock``
  around the read-modify-write, write a temp file in the same directory, fsync
  it and ``os.replace`` it over the file, so readers (no lock) always see a
  complete file. A corrupt or non-array file is read as empty (with a warning).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.errors import ConfigInvalid
from render_signal.common.keys import Keys
from render_signal.common.timefmt import epoch
from render_signal.common.urls import target_url_problem

__all__ = ["LinkJournal", "LinkRecord", "LinksFile", "check_imported"]

logger = logging.getLogger(__name__)

#: Imported rows may not claim to be from the future (beyond clock skew).
MAX_CLOCK_SKEW_S = 300.0


class LinkRecord(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    """One offloaded link (the original's schema)."""

    source_url: str
    r2_url: str
    provider: str
    created_at: str
    original_filename: str | None = None

    def created_ts(self) -> float | None:
        """``created_at`` in Unix seconds (None when it can't be parsed)."""
        return epoch(self.created_at)

    def file_key(self) -> tuple[str, str, str]:
        """The file's dedup key."""
        return self.source_url, self.r2_url, self.provider


def check_imported(record: LinkRecord, *, r2_public_base: str, now: float) -> None:
    """Hold an imported row to the rules of a written one.

    Raises:
        ConfigInvalid: naming what is wrong (a webhook would carry ``r2_url``).
    """
    for name, url in (("source_url", record.source_url), ("r2_url", record.r2_url)):
        problem = target_url_problem(url)
        if problem or not url.startswith("https://"):
            raise ConfigInvalid(f"{name}: {problem or 'must use https'}")
    base = r2_public_base.rstrip("/") + "/"
    if not r2_public_base or not record.r2_url.startswith(base):
        raise ConfigInvalid("r2_url: not under R2_PUBLIC_BASE_URL")
    created = record.created_ts()
    if created is None or created > now + MAX_CLOCK_SKEW_S or created < 946684800:
        raise ConfigInvalid("created_at: not a plausible UTC ISO time")
    if not record.provider or len(record.provider) > 40:
        raise ConfigInvalid("provider: missing or too long")


_decoder = msgspec.json.Decoder(LinkRecord)
_file_decoder = msgspec.json.Decoder(list[Any])
_records_decoder = msgspec.json.Decoder(list[LinkRecord])
_records_encoder = msgspec.json.Encoder()


class LinkJournal:
    """Source URL -> record in Redis, with a reuse window."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        max_age_s: float,
        prune_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.key = keys.link_journal
        self.index_key = keys.link_journal_index
        self.max_age_s = max_age_s
        self.prune_interval_s = prune_interval_s
        self._clock = clock
        self._next_prune = float("-inf")

    async def get(self, source_url: str) -> LinkRecord | None:
        """The record for ``source_url`` when present and still inside the reuse window."""
        raw = await self.redis.hget(self.key, source_url)
        return self.fresh(raw)

    def fresh(self, raw: bytes | str | None) -> LinkRecord | None:
        """A stored record (as HGET/HMGET on :attr:`key` return it) when still reusable."""
        if not raw:
            return None
        try:
            record = _decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        created = record.created_ts()
        if created is None or self._clock() - created > self.max_age_s:
            return None
        return record

    async def all(self) -> list[LinkRecord]:
        """Every record (the dashboard's link list)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key)  # type: ignore[assignment]
        records: list[LinkRecord] = []
        for value in raw.values():
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                records.append(_decoder.decode(value))
        return records

    async def put(
        self, records: Iterable[LinkRecord], also: Callable[[Pipeline], object] | None = None
    ) -> list[Any]:
        """Remember ``records``; ``also`` adds commands to the same MULTI (its replies
        are the last ones of the list returned).

        Records past the reuse window are pruned here at most once per
        ``prune_interval_s``.
        """
        now = self._clock()
        stale: list[bytes | str] = []
        if now >= self._next_prune:
            self._next_prune = now + self.prune_interval_s
            found = await self.redis.zrangebyscore(
                self.index_key, "-inf", now - self.max_age_s, 0, 500
            )
            stale = [m for m in found if isinstance(m, bytes | str)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for record in records:
                pipe.hset(self.key, record.source_url, msgspec.json.encode(record))
                pipe.zadd(self.index_key, {record.source_url: record.created_ts() or now})
            if stale:
                pipe.hdel(self.key, *stale)
                pipe.zrem(self.index_key, *stale)
            if also is not None:
                also(pipe)
            replies: list[Any] = await pipe.execute()
        return replies


class LinksFile:
    """Append-with-dedup to the JSON array file under an exclusive lock (blocking I/O)."""

    def __init__(self, path: str | Path, max_entries: int = 1000) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_entries = max(1, max_entries)
        #: (inode, size, mtime) of the file this object last wrote, and its rows.
        self._cache: tuple[tuple[int, int, int], tuple[LinkRecord, ...]] | None = None

    def read(self) -> list[LinkRecord]:
        """Current rows; [] when missing or corrupt (rows that don't decode are skipped)."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return []
        if not text.strip():
            return []
        try:
            return list(_records_decoder.decode(text))  # every row valid: one C pass
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError:
            logger.warning("LINKS: %s is not a JSON array; treating it as empty", self.path)
            return []
        try:
            rows = _file_decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("LINKS: %s is not a JSON array; treating it as empty", self.path)
            return []
        records: list[LinkRecord] = []
        for row in rows:
            with contextlib.suppress(msgspec.ValidationError):
                records.append(msgspec.convert(row, LinkRecord))
        return records

    def _current(self) -> list[LinkRecord]:
        """The rows, from memory when the file is still the one this object last wrote
        (same inode, size and mtime): under load a flush otherwise re-read and
        re-decoded the whole (up to 1000-row) file each time."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._cache is not None and self._cache[0] == signature:
            return list(self._cache[1])
        return self.read()

    def append(self, records: list[LinkRecord]) -> int:
        """Add ``records`` (deduplicated), keep the newest ``max_entries``; returns added count."""
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                current = self._current()
                seen = {r.file_key() for r in current}
                added = 0
                for record in records:
                    if record.file_key() in seen:
                        continue
                    seen.add(record.file_key())
                    current.append(record)
                    added += 1
                if added:
                    self._write(current[-self.max_entries :])
                return added
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, records: list[LinkRecord]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from the gateway's user
            # Byte for byte what json.dump(ensure_ascii=False, indent=2) wrote, ~20x cheaper.
            text = msgspec.json.format(_records_encoder.encode(records), indent=2) + b"\n"
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
                stat = os.fstat(handle.fileno())
            os.replace(tmp, self.path)
            self._cache = ((stat.st_ino, stat.st_size, stat.st_mtime_ns), tuple(records))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
