"""Redis Streams plumbing: publish, consumer groups, trimming, and their metrics.

Delivery semantics (see docs/architecture.md):

* An entry is acked only after its handler returned, i.e. after the handler's
  side effect and idempotency marker are written. A crash in between yields a
  redelivery, never a loss; consumers are idempotent on natural keys.
* A restarted consumer first re-reads its own pending entries (stable consumer
  names make that possible), then reads new ones with ``>``.
* A slow entry never holds back the entries after it (``common.consumer``).
* Entries left pending by a dead consumer are taken over through its liveness
  key (below). A failed handler leaves its entry pending; XAUTOCLAIM retries it
  once idle longer than ``claim_idle_ms``, which is also the backstop for a
  consumer that is alive but stuck.
* After ``max_deliveries`` deliveries an entry is moved to ``<stream>.dlq``
  with the last error text, and acked. Undecodable entries and
  :class:`PermanentError` go there at once.
* If the group disappears (NOGROUP), it is recreated at the last entry this
  consumer saw, so history is not replayed and nothing newer is skipped.
* Entries every group has acknowledged are trimmed (XTRIM MINID) every second,
  so a stream holds its backlog, not its history (entries carry whole emails:
  at 100 emails/s, 10 s between trims held 270 MB in Redis, 1 s 56 MB). The
  approximate MAXLEN on publish only caps a group that stopped consuming.
* SIGTERM sets the stop event: entries not yet started are handed back at once,
  the in-flight ones finish (bounded by the drain deadline), then the loop returns.

Replicas and takeover (issue 17)
--------------------------------
Any worker runs as N replicas: consumer groups share the stream entries,
notify replicas share the job schedule, one ingest replica holds the IMAP lock.
What a replica holds -- pending entries in its group, notify leases
(``notify:leases``), the IMAP lock -- is taken over by a live replica within
**LIVENESS_TTL_SECONDS + 1 s** (8 + 1 s by default; the lock: + 2 s) after it
dies, whatever name its replacement has, and never while it is alive, however
slow its work.

Choice: takeover keyed on liveness, not short per-item leases. Each process
keeps ``<prefix>live:<service>-<instance>`` (``common.liveness``) with a TTL of
8 s, renewed every 2 s by its own task, from before its components start until
after its drain. Live replicas look for holders without that key: each
consumer every second (XINFO CONSUMERS, then one Lua script per other member:
EXISTS its key, else XPENDING + XCLAIM to itself, atomically; a dead member with
nothing left is removed from the group), notify's scheduler every second (one
Lua pass over ``notify:leases``), ingest's standbys every 2 s (the lock script).
Why: one renewal per process instead of one per item in flight (an
owner-checked XCLAIM per stream entry, a ZADD per notify job, a 10 s IMAP lock
instead of the documented 300 s); the TTL is kept by Redis alone, so clock skew
between hosts plays no part; the retry delay of a failed entry
(``claim_idle_ms``) stays independent of the takeover bound. Cost: one SET every
2 s per process, one XINFO and one EVALSHA per member per second per consumer.

Measured (2 shared cores, tests/integration/test_scale_out.py, compose test):

* SIGKILL -> every item of the dead replica held by a live one: 6.5-8.9 s
  (pending entries, leases and the lock alike; compose: 7.5-8.2 s);
* worst delay between a kill and the delivery of an email in flight at it,
  200 emails at 4/s with nine kills: 8.6-12.1 s (bound asked: 20 s);
* a 60 s Worker call and a 40 s webhook: done once each, nothing taken over;
  longest gap between two liveness renewals meanwhile 2.1 s (TTL 8 s);
* SIGTERM of a replica: the entries it had not started are with another
  replica 0.2 s later, the rest (and leases, the lock) within 1 s of its exit.

Worst cases:

* Alive but frozen or cut off from Redis for longer than the TTL (VM pause, a
  blocking call on the event loop, a partition): its work is taken over while
  it may still finish it. The result is a second send under the same
  webhook-id (the receiver dedups), a second offload whose publish the
  ``offload:done`` marker suppresses, a re-parse published under the same
  event id -- never a second webhook-id, never a loss.
* Alive but hung (a call that never returns): not taken over by liveness; it is
  bounded by its own timeout (Worker 15/120 s, webhook timeout), then by the
  backstops: XAUTOCLAIM after ``claim_idle_ms`` (offload about 390 s, ingest
  and notify 30 s) and the notify lease end (4 x timeout + 60 s).
* Survivors busy: entries are claimed within the bound but wait for a free
  handler slot (offload 4, notify 8 per replica); capacity is the replica count.
* Redis down longer than the TTL: every key may lapse; the first sweep after
  the restart may take over a live replica's work (same-id resends only).
* A replica restarted under the same name takes its own pending entries,
  leases and lock back at once, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
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
    "TAKEN_OVER",
    "Delivery",
    "Entry",
    "ensure_group",
    "publish",
    "publish_all",
    "read_range",
    "stage_publish",
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
TAKEN_OVER = Counter(
    "render_signal_stream_taken_over_total",
    "Pending entries taken over from a consumer whose liveness key was gone",
    ["stream"],
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
    before: Callable[[Pipeline], object] | None = None,
) -> str:
    """XADD ``event`` with approximate trimming; returns the entry id.

    ``before`` adds commands to run just before the XADD, in the same round
    trip (a pipeline, not a transaction: they run in order, and an error in
    one is raised after the XADD ran -- a retry then publishes again, which
    consumers absorb as any redelivery).

    The caller may treat the event as durable once this returns (with AOF the
    write is in the append-only file before Redis replies).
    """
    if before is None:
        fields = encode_entry(event)
        entry_id = await redis.xadd(stream_key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
    else:
        async with redis.pipeline(transaction=False) as pipe:
            before(pipe)
            stage_publish(pipe, stream_key, event, maxlen=maxlen)
            entry_id = (await pipe.execute())[-1]
    PUBLISHED.labels(Keys.stream_name(stream_key)).inc()
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def publish_all(
    redis: Redis,
    stream_key: str,
    events: Sequence[MailRaw | MailReceived | MailOffloaded],
    *,
    maxlen: int = DEFAULT_MAXLEN,
) -> list[str]:
    """XADD ``events`` in order, in one round trip; returns their entry ids.

    Durable once this returns, as :func:`publish`. A pipeline, not a
    transaction: on an error, some may have been added before it is raised (a
    retry publishes them again, which consumers absorb as any redelivery). One
    event is a plain XADD, which costs the client less than a pipeline of one.
    """
    if len(events) == 1:
        return [await publish(redis, stream_key, events[0], maxlen=maxlen)]
    if not events:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            stage_publish(pipe, stream_key, event, maxlen=maxlen)
        entry_ids = await pipe.execute()
    PUBLISHED.labels(Keys.stream_name(stream_key)).inc(len(events))
    return [i.decode() if isinstance(i, bytes) else str(i) for i in entry_ids]


def stage_publish(
    pipe: Pipeline,
    stream_key: str,
    event: MailRaw | MailReceived | MailOffloaded,
    *,
    maxlen: int = DEFAULT_MAXLEN,
) -> None:
    """Stage the XADD of :func:`publish` in ``pipe`` (its reply is the entry id), for
    a caller whose other writes go in the same MULTI; the caller counts it published."""
    pipe.xadd(stream_key, encode_entry(event), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]


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
