"""Redis Streams plumbing: publish, consumer groups, trimming, and their metrics.

Delivery semantics (see docs/architecture.md):

* An entry is acked only after its handler returned, i.e. after the handler's
  side effect and idempotency marker are written. A crash in between yields a
  redelivery, never a loss; consumers are idempotent on natural keys.
* A restarted consumer first re-reads its own pending entries (stable consumer
  names make that possible), then reads new ones with ``>``.
* Entries left pending by a dead consumer are reclaimed with XAUTOCLAIM once
  idle longer than ``claim_idle_ms``. A failed handler leaves its entry pending,
  so the same mechanism retries it.
* After ``max_deliveries`` deliveries an entry is moved to ``<stream>.dlq``
  with the last error text, and acked. Undecodable entries and
  :class:`PermanentError` go there at once.
* If the group disappears (NOGROUP), it is recreated at the last entry this
  consumer saw, so history is not replayed and nothing newer is skipped.
* Entries every group has acknowledged are trimmed (XTRIM MINID) every ten
  seconds, so a stream holds its backlog, not its history (entries carry whole
  emails). The approximate MAXLEN on publish is only a hard cap for a group
  that stopped consuming.
* SIGTERM sets the stop event: the in-flight batch finishes (bounded by the
  drain deadline) and the loop returns.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import msgspec
from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from render_signal.common.events import MailOffloaded, MailRaw, MailReceived, encode_entry
from render_signal.common.keys import Keys

__all__ = [
    "DEFAULT_MAXLEN",
    "DLQ_MAXLEN",
    "ENTRIES",
    "HANDLER_SECONDS",
    "LAST_LOOP",
    "PUBLISHED",
    "Delivery",
    "Entry",
    "ensure_group",
    "publish",
    "read_range",
    "trim_acknowledged",
]

logger = logging.getLogger(__name__)

#: Approximate cap per stream; far above any backlog we expect (~1 email/s).
DEFAULT_MAXLEN = 100_000
DLQ_MAXLEN = 10_000

E = TypeVar("E", MailRaw, MailReceived, MailOffloaded)

ENTRIES = Counter(
    "render_signal_stream_entries_total",
    "Stream entries handled by consumers, by outcome",
    ["stream", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "render_signal_stream_handler_seconds",
    "Time spent in a consumer's handler per entry",
    ["stream"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 180),
)
LAST_LOOP = Gauge(
    "render_signal_consumer_last_loop_timestamp_seconds",
    "Unix time of the consumer loop's last completed read (stalls show as age)",
    ["stream"],
)
PUBLISHED = Counter(
    "render_signal_stream_published_total", "Entries published, by stream", ["stream"]
)


#: A stream entry as redis-py returns it (bytes responses): ``(id, fields)``.
Entry = tuple[bytes, dict[bytes, bytes]]


async def read_range(
    redis: Redis,
    key: str,
    *,
    start: str = "-",
    end: str = "+",
    count: int | None = None,
    newest_first: bool = False,
) -> list[Entry]:
    """XRANGE (or XREVRANGE with ``newest_first``) as typed entries.

    ``start``/``end`` are given oldest-to-newest either way.
    """
    if newest_first:
        rows: Any = await redis.xrevrange(key, max=end, min=start, count=count)
    else:
        rows = await redis.xrange(key, min=start, max=end, count=count)
    return [(entry_id, fields or {}) for entry_id, fields in rows]


class Delivery(msgspec.Struct, frozen=True):
    """Metadata about the entry being handled."""

    entry_id: str
    deliveries: int
    stream: str


async def publish(
    redis: Redis,
    stream_key: str,
    event: MailRaw | MailReceived | MailOffloaded,
    *,
    maxlen: int = DEFAULT_MAXLEN,
) -> str:
    """XADD ``event`` with approximate trimming; returns the entry id.

    The caller may treat the event as durable once this returns (with AOF the
    write is in the append-only file before Redis replies).
    """
    entry_id = await redis.xadd(
        stream_key,
        encode_entry(event),  # type: ignore[arg-type]
        maxlen=maxlen,
        approximate=True,
    )
    PUBLISHED.labels(Keys.stream_name(stream_key)).inc()
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def ensure_group(redis: Redis, stream_key: str, group: str, start_id: str = "0") -> bool:
    """Create the consumer group (and stream) if missing. Returns True if created.

    A new group starts at ``0``: entries published before the consumer first
    ran (ingress accepting mail while ingest was still starting) are work to
    do, not history to skip.
    """
    try:
        await redis.xgroup_create(stream_key, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


async def trim_acknowledged(redis: Redis, stream_key: str) -> int:
    """Drop entries that every consumer group has acknowledged; returns how many.

    The floor is, over all groups, the oldest pending entry, or the entry after
    the last one delivered when nothing is pending. Nothing a group may still
    need is removed. A stream without groups is left alone.
    """
    try:
        groups: Any = await redis.xinfo_groups(stream_key)
    except ResponseError:
        return 0  # no such stream yet
    if not groups:
        return 0
    floor: tuple[int, int] | None = None
    for group in groups:
        info = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in group.items()
        }
        summary: Any = await redis.xpending(stream_key, info["name"])
        if summary["pending"]:
            oldest = summary["min"]
            need = oldest.decode() if isinstance(oldest, bytes) else str(oldest)
        else:
            need = _next_id(str(info["last-delivered-id"]))
        ms, _, seq = need.partition("-")
        candidate = (int(ms), int(seq or 0))
        floor = candidate if floor is None else min(floor, candidate)
    assert floor is not None
    removed = await redis.xtrim(stream_key, minid=f"{floor[0]}-{floor[1]}", approximate=False)
    return int(removed)
