"""Streams runtime against a real redis-server (issue 2, acceptance 4 a-e)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from render_signal.common.consumer import Consumer
from render_signal.common.errors import PermanentError
from render_signal.common.events import MailRaw, MailReceived, decode_entry
from render_signal.common.redisclient import create_redis
from render_signal.common.streams import Delivery, ensure_group, publish, publish_all
from render_signal.devstack.polling import eventually
from render_signal.devstack.redisserver import RedisServer


def raw(event_id: str) -> MailRaw:
    return MailRaw(event_id=event_id, source="http_raw", received_at=time.time(), raw=b"x")


@contextlib.asynccontextmanager
async def recording_consumer(redis: Redis, stream: str, **options: Any) -> AsyncIterator[list[str]]:
    """A running consumer (group ``g``) recording handled event ids; stopped on exit."""
    seen: list[str] = []

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        seen.append(event.event_id)

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, **{"claim_idle_ms": 200, **options},
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield seen
    finally:
        stop.set()
        await task


async def handled_ids(redis: Redis, prefix: str) -> list[str]:
    values: Any = await redis.lrange(f"{prefix}handled", 0, -1)
    return [v.decode().split(":")[0] for v in values]


async def test_failing_handler_is_retried_then_dead_lettered_with_error(
    redis: Redis, key_prefix: str
) -> None:
    stream = f"{key_prefix}mail.raw"
    attempts: list[int] = []

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        attempts.append(delivery.deliveries)
        raise RuntimeError(f"receiver exploded on {event.event_id}")

    consumer = Consumer(
        redis,
        stream_key=stream,
        group="g",
        consumer="c1",
        event_type=MailRaw,
        handler=handler,
        block_ms=100,
        claim_idle_ms=50,
        max_deliveries=3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await publish(redis, stream, raw("e-fail"))

    async def dead() -> bool:
        return int(await redis.xlen(f"{stream}.dlq")) == 1

    await eventually(dead, what="the entry in the dead-letter stream")
    stop.set()
    await task
    assert attempts == [1, 2, 3]
    [(_, fields)] = await redis.xrange(f"{stream}.dlq")
    assert b"receiver exploded on e-fail" in fields[b"error"]
    assert fields[b"deliveries"] == b"3"
    assert fields[b"source_stream"] == stream.encode()
    pending: Any = await redis.xpending(stream, "g")
    assert pending["pending"] == 0, "dead-lettered entries are acked"


async def test_malformed_and_permanent_errors_dead_letter_at_once(
    redis: Redis, key_prefix: str
) -> None:
    stream = f"{key_prefix}mail.raw"
    calls: list[str] = []

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        calls.append(event.event_id)
        if event.event_id == "perm":
            raise PermanentError("truncated MIME, nothing to retry")

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, claim_idle_ms=50,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await redis.xadd(stream, {"type": "mail.raw/1", "data": b"{not json"})
    await publish(redis, stream, MailReceived(  # wrong event type for this stream
        event_id="x", email_id="x", source="imap", subject="", sender_address="",
        sender_email="", received_date="", body_text="", body_html=""))  # fmt: skip
    await publish(redis, stream, raw("perm"))
    await publish(redis, stream, raw("ok"))

    async def three_dead() -> bool:
        return int(await redis.xlen(f"{stream}.dlq")) == 3

    await eventually(three_dead, what="three dead letters")
    stop.set()
    await task
    errors = [f[b"error"].decode() for _, f in await redis.xrange(f"{stream}.dlq")]
    assert errors[0].startswith("malformed:")
    assert "expected MailRaw" in errors[1]
    assert errors[2] == "permanent: truncated MIME, nothing to retry"
    assert calls == ["perm", "ok"], "each valid entry handled exactly once"


async def test_sigkilled_consumer_leaves_entry_pending_and_another_completes_it(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    stream = f"{key_prefix}mail.raw"
    common = {"REDIS_URL": redis_url, "PREFIX": key_prefix, "CLAIM_IDLE_MS": "300"}
    first = launch("consumer", NAME="c1", BLOCK_IDS="stuck", **common)

    async def c1_ready() -> bool:
        return bool(await redis.get(f"{key_prefix}ready:c1"))

    await eventually(c1_ready, what="consumer c1 ready")
    await publish(redis, stream, raw("stuck"))

    async def started() -> bool:
        return b"stuck" in (await redis.lrange(f"{key_prefix}started", 0, -1))

    await eventually(started, what="c1 to start handling")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    pending: Any = await redis.xpending(stream, "g")
    assert pending["pending"] == 1, "killed mid-handler: the entry stays pending"

    launch("consumer", NAME="c2", **common)

    async def completed() -> bool:
        return await handled_ids(redis, key_prefix) == ["stuck"]

    await eventually(completed, what="c2 to complete the reclaimed entry")
    handled: Any = await redis.lrange(f"{key_prefix}handled", 0, -1)
    assert handled == [b"stuck:c2"]

    async def acked() -> bool:
        info: Any = await redis.xpending(stream, "g")
        return bool(info["pending"] == 0)

    await eventually(acked, what="the reclaimed entry acked")


async def test_consumer_survives_redis_sigkill_and_handles_every_entry(
    own_redis: RedisServer,
) -> None:
    redis = create_redis(own_redis.url, block_ms=100)
    stream = "t:mail.raw"
    async with recording_consumer(redis, stream) as seen:
        for i in range(20):
            await publish(redis, stream, raw(f"before-{i}"))

        async def got_first() -> bool:
            return len(seen) == 20

        await eventually(got_first, what="first 20 entries")
        # fsync the AOF so the published entries are on disk before the crash
        await redis.execute_command("BGREWRITEAOF")
        own_redis.kill()
        await asyncio.to_thread(own_redis.start)
        for i in range(20):
            await publish(redis, stream, raw(f"after-{i}"))

        async def got_all() -> bool:
            return {f"after-{i}" for i in range(20)} <= set(seen)

        await eventually(got_all, timeout_s=30, what="entries published after the restart")
    assert set(seen) == {f"before-{i}" for i in range(20)} | {f"after-{i}" for i in range(20)}
    await redis.aclose()


async def test_group_deleted_under_running_consumer_is_recreated_without_replay(
    redis: Redis, key_prefix: str
) -> None:
    stream = f"{key_prefix}mail.raw"
    async with recording_consumer(redis, stream) as seen:
        for i in range(5):
            await publish(redis, stream, raw(f"old-{i}"))

        async def old_done() -> bool:
            return len(seen) == 5

        await eventually(old_done, what="old entries")
        await redis.xgroup_destroy(stream, "g")
        await publish(redis, stream, raw("new-0"))

        async def new_done() -> bool:
            return "new-0" in seen

        await eventually(new_done, what="the entry published after the group vanished")
        await publish(redis, stream, raw("new-1"))

        async def newer_done() -> bool:
            return "new-1" in seen

        await eventually(newer_done, what="a later entry")
    assert seen == [*(f"old-{i}" for i in range(5)), "new-0", "new-1"], "no history replayed"


async def test_sigterm_drains_in_flight_batch_and_exits_zero(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    stream = f"{key_prefix}mail.raw"
    proc = launch("consumer", NAME="c1", REDIS_URL=redis_url, PREFIX=key_prefix, HOLD_SECONDS="1.0")

    async def ready() -> bool:
        return bool(await redis.get(f"{key_prefix}ready:c1"))

    await eventually(ready, what="consumer ready")
    for i in range(5):
        await publish(redis, stream, raw(f"e{i}"))

    async def all_started() -> bool:
        return int(await redis.llen(f"{key_prefix}started")) == 5

    await eventually(all_started, what="the batch in flight")
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 20)
    output = proc.stdout.read().decode()
    assert code == 0, output
    assert "PROCESS: SIGTERM received" in output
    assert sorted(await handled_ids(redis, key_prefix)) == [f"e{i}" for i in range(5)]
    pending: Any = await redis.xpending(stream, "g")
    assert pending["pending"] == 0, "the drained batch was acked before exit"


async def test_acknowledged_history_is_trimmed_but_pending_work_is_kept(
    redis: Redis, key_prefix: str
) -> None:
    from render_signal.common.streams import trim_acknowledged

    stream = f"{key_prefix}mail.raw"
    assert await trim_acknowledged(redis, stream) == 0, "no stream yet: nothing to do"
    for i in range(30):
        await publish(redis, stream, raw(f"e{i}"))
    assert await trim_acknowledged(redis, stream) == 0, "no group yet: history is all work"
    await redis.xgroup_create(stream, "fast", id="0")
    await redis.xgroup_create(stream, "slow", id="0")
    fast: Any = await redis.xreadgroup("fast", "c", {stream: ">"}, count=30)
    await redis.xack(stream, "fast", *[eid for eid, _ in fast[0][1]])
    slow: Any = await redis.xreadgroup("slow", "c", {stream: ">"}, count=20)
    slow_ids = [eid for eid, _ in slow[0][1]]
    await redis.xack(stream, "slow", *slow_ids[:10])  # 10 acked, 10 pending, 10 unread
    removed = await trim_acknowledged(redis, stream)
    assert removed == 10, "only what every group has acknowledged goes"
    remaining = [eid for eid, _ in await redis.xrange(stream)]
    assert remaining[0] == slow_ids[10], "the slow group's oldest pending entry is kept"
    assert len(remaining) == 20
    await redis.xack(stream, "slow", *slow_ids[10:])
    rest: Any = await redis.xreadgroup("slow", "c", {stream: ">"}, count=30)
    await redis.xack(stream, "slow", *[eid for eid, _ in rest[0][1]])
    assert await trim_acknowledged(redis, stream) == 20
    assert await redis.xlen(stream) == 0


async def test_consumer_trims_its_stream_as_it_goes(redis: Redis, key_prefix: str) -> None:
    """At the default interval (1 s): entries carry whole emails, so what a stream
    holds at 100 emails/s is about interval x 100 x 70 KB (issue 16)."""
    stream = f"{key_prefix}mail.raw"
    async with recording_consumer(redis, stream) as seen:
        for i in range(25):
            await publish(redis, stream, raw(f"e{i}"))

        async def all_handled_and_trimmed() -> bool:
            return len(seen) == 25 and int(await redis.xlen(stream)) == 0

        await eventually(all_handled_and_trimmed, 3.0, what="handled entries trimmed away")


async def test_acks_ride_on_the_next_read_and_slow_entries_are_handled_once(
    redis: Redis, key_prefix: str
) -> None:
    """A batch's XACK goes with the next XREADGROUP (one round trip, issue 16); a
    handler slower than ``claim_idle_ms`` must still see its entries acked before
    the next reclaim sweep, or XAUTOCLAIM would hand them to it a second time."""
    stream = f"{key_prefix}mail.raw"
    seen: list[str] = []

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        seen.append(event.event_id)
        await asyncio.sleep(0.4)  # slower than claim_idle_ms below: the slow side effect

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, claim_idle_ms=200, concurrency=4,
    )  # fmt: skip
    await ensure_group(redis, stream, "g")  # so XPENDING below never races its creation
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        calls0 = await command_calls(redis)
        for i in range(3):
            await publish(redis, stream, raw(f"e{i}"))

        async def all_acked() -> bool:
            pending: Any = await redis.xpending(stream, "g")
            return len(seen) >= 3 and int(pending["pending"]) == 0

        await eventually(all_acked, 10, "the three entries handled and acked")
        sweeps = consumer._last_claim

        async def two_more_sweeps() -> bool:
            return consumer._last_claim >= sweeps + 2 * consumer.claim_interval_s

        await eventually(two_more_sweeps, 10, "two reclaim sweeps after the acks")
        calls = {k: v - calls0.get(k, 0) for k, v in (await command_calls(redis)).items()}
    finally:
        stop.set()
        await task
    assert sorted(seen) == ["e0", "e1", "e2"], "an entry was handled twice"
    assert calls.get("xack", 0) >= 1
    assert calls.get("xack", 0) <= calls.get("xreadgroup", 0), calls


async def pending_is(redis: Redis, stream: str, count: int) -> bool:
    pending: Any = await redis.xpending(stream, "g")
    return int(pending["pending"]) == count


@contextlib.asynccontextmanager
async def running(consumer: Consumer[MailRaw], release: asyncio.Event) -> AsyncIterator[None]:
    """``consumer`` runs; on exit ``release`` is set (held handlers end), then it stops."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield
    finally:
        release.set()
        stop.set()
        await task


async def test_a_slow_entry_does_not_hold_back_the_entries_after_it(
    redis: Redis, key_prefix: str
) -> None:
    """A batch read used to wait for its slowest entry: one long handler (a Worker
    copy of a large file) held back every email that arrived after it. Now each
    finished entry makes room for the next read, and everything is acked once."""
    stream = f"{key_prefix}mail.raw"
    seen: list[str] = []
    release = asyncio.Event()

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        seen.append(event.event_id)
        if event.event_id == "slow":
            await release.wait()

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, claim_idle_ms=60_000, concurrency=4, batch_size=8,
    )  # fmt: skip
    await ensure_group(redis, stream, "g")
    async with running(consumer, release):
        await publish(redis, stream, raw("slow"))
        await eventually(lambda: "slow" in seen, 10, "the slow entry started")
        later = [f"e{i}" for i in range(20)]  # more than one batch_size and concurrency
        for event_id in later:
            await publish(redis, stream, raw(event_id))

        async def later_done_slow_pending() -> bool:
            return set(later) <= set(seen) and await pending_is(redis, stream, 1)

        await eventually(later_done_slow_pending, 10, "the later entries handled and acked")
        assert not release.is_set(), "the slow entry was still running meanwhile"
        rows: Any = await redis.xpending_range(stream, "g", min="-", max="+", count=5)
        assert [r["times_delivered"] for r in rows] == [1], "the slow entry was never re-read"
        release.set()
        await eventually(lambda: pending_is(redis, stream, 0), 10, "the slow one acked")
    assert sorted(seen) == sorted(["slow", *later]), "each entry handled once"


async def test_a_slow_retry_does_not_hold_back_new_entries(redis: Redis, key_prefix: str) -> None:
    """A failed entry is retried once idle; its retry runs in hand like a new entry,
    so a slow retry holds back nothing either."""
    stream = f"{key_prefix}mail.raw"
    seen: list[tuple[str, int]] = []
    release = asyncio.Event()

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        seen.append((event.event_id, delivery.deliveries))
        if event.event_id == "r":
            if delivery.deliveries == 1:
                raise RuntimeError("the first try fails")
            await release.wait()

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, claim_idle_ms=200, concurrency=4,
    )  # fmt: skip
    await ensure_group(redis, stream, "g")
    async with running(consumer, release):
        await publish(redis, stream, raw("r"))
        await eventually(lambda: ("r", 2) in seen, 10, "the retry of r running")
        later = [f"e{i}" for i in range(10)]
        for event_id in later:
            await publish(redis, stream, raw(event_id))

        async def later_done_retry_pending() -> bool:
            return {(e, 1) for e in later} <= set(seen) and await pending_is(redis, stream, 1)

        await eventually(later_done_retry_pending, 10, "the new entries handled meanwhile")
        release.set()
        await eventually(lambda: pending_is(redis, stream, 0), 10, "the retried one acked")
    assert [d for e, d in seen if e == "r"] == [1, 2], "r: failed once, retried once"
    assert sorted(e for e, _ in seen if e != "r") == sorted(later), "each new entry once"


async def command_calls(redis: Redis) -> dict[str, int]:
    stats: Any = await redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


async def test_a_deferred_ack_is_sent_before_the_own_pel_recheck_after_redis_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The deferred XACK (issue 16) meets Redis going away: the next read fails, and
    once Redis is back the consumer re-checks its own PEL, where the handled entry
    still is (clean shutdown: the PEL survives); it is acked before that re-check,
    never handed to the handler a second time."""
    server = RedisServer(tmp_path / "data", aof=True).start()
    redis = create_redis(server.url, block_ms=100)
    stream = "t:mail.raw"
    seen: list[str] = []

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        seen.append(event.event_id)
        if event.event_id == "e1":
            await asyncio.to_thread(server.stop)  # before the ack can ride on a read

    consumer = Consumer(
        redis, stream_key=stream, group="g", consumer="c1", event_type=MailRaw,
        handler=handler, block_ms=100, claim_idle_ms=60_000,
    )  # fmt: skip
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="render_signal.common.consumer")
    try:
        await ensure_group(redis, stream, "g")
        task = asyncio.create_task(consumer.run(stop))
        await publish(redis, stream, raw("e1"))

        async def read_failed() -> bool:
            return any("redis unavailable" in r.getMessage() for r in caplog.records)

        await eventually(read_failed, 20, "the read after e1 to fail")
        await asyncio.to_thread(server.start)

        async def acked() -> bool:
            with contextlib.suppress(RedisConnectionError, OSError):
                pending: Any = await redis.xpending(stream, "g")
                return int(pending["pending"]) == 0
            return False

        await eventually(acked, 20, "e1 acked once Redis is back")
        await publish(redis, stream, raw("e2"))
        await eventually(lambda: "e2" in seen, 10, "a later entry handled")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
        await redis.aclose()
        server.stop()
    assert seen == ["e1", "e2"], "an entry was handled twice"


async def test_publish_all_adds_every_event_in_order_and_counts_them(
    redis: Redis, key_prefix: str
) -> None:
    stream = f"{key_prefix}mail.raw"
    label = {"stream": "mail.raw"}

    def published() -> float:
        return REGISTRY.get_sample_value("render_signal_stream_published_total", label) or 0.0

    before = published()
    assert await publish_all(redis, stream, []) == []
    ids = await publish_all(redis, stream, [raw("a"), raw("b"), raw("c")])
    ids += await publish_all(redis, stream, [raw("d")])
    entries: Any = await redis.xrange(stream)
    assert [i.decode() for i, _ in entries] == ids
    assert [decode_entry(f, MailRaw).event_id for _, f in entries] == ["a", "b", "c", "d"]
    assert published() - before == 4
