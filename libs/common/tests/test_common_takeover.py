"""Takeover keyed on liveness (issue 17): real worker processes, real Redis.

* a dead replica's pending entries are taken over once its liveness key is gone,
  not after the idle-reclaim time (set to ten minutes here);
* a live replica's entry is never taken over, however long its handler runs;
* SIGTERM hands back the entries it never started, at once and with their
  delivery count undone;
* the lock goes to another replica when its holder's liveness key is gone.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from typing import Any

from redis.asyncio import Redis
from render_signal.common.events import MailRaw
from render_signal.common.keys import Keys
from render_signal.common.locks import RedisLock
from render_signal.common.streams import publish
from render_signal.devstack.polling import eventually

TTL_S = 1.0


def raw(event_id: str) -> MailRaw:
    return MailRaw(event_id=event_id, source="http_raw", received_at=time.time(), raw=b"x")


async def strings(redis: Redis, key: str) -> list[str]:
    values: Any = await redis.lrange(key, 0, -1)
    return [v.decode() for v in values]


async def start_worker(redis: Redis, launch: Any, prefix: str, name: str, **env: str) -> Any:
    proc = launch("worker", NAME=name, PREFIX=prefix, **env)

    async def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode()
        return bool(await redis.get(f"{prefix}ready:{name}"))

    await eventually(ready, timeout_s=30, what=f"worker {name} ready")
    return proc


async def test_dead_replica_is_taken_over_and_a_slow_live_one_never(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    stream = f"{key_prefix}mail.raw"
    common = {"REDIS_URL": redis_url, "LIVENESS_TTL": str(TTL_S)}
    slow = await start_worker(redis, launch, key_prefix, "w1", BLOCK_IDS="stuck", **common)
    await publish(redis, stream, raw("stuck"))

    async def started() -> list[str]:
        return await strings(redis, f"{key_prefix}started")

    await eventually(started, what="w1 to start the entry")
    await start_worker(redis, launch, key_prefix, "w2", **common)

    async def pending_row() -> dict[str, Any]:
        rows: Any = await redis.xpending_range(stream, "g", min="-", max="+", count=10)
        assert len(rows) == 1
        return dict(rows[0])

    async def held_three_ttls() -> bool:
        return int((await pending_row())["time_since_delivered"]) >= 3000 * TTL_S

    # w2 sweeps every 0.2 s meanwhile: three lifetimes of w1's key go by.
    await eventually(held_three_ttls, timeout_s=20, what="the entry held for three TTLs")
    row = await pending_row()
    assert row["consumer"] == b"offload-w1", "a live replica's entry was taken over"
    assert row["times_delivered"] == 1
    assert await started() == ["stuck"], "the slow handler was started twice"

    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=10)
    killed_at = time.monotonic()

    async def taken_over() -> bool:
        return await strings(redis, f"{key_prefix}handled") == ["stuck:w2"]

    await eventually(taken_over, timeout_s=20, what="w2 to take the dead replica's entry over")
    takeover_s = time.monotonic() - killed_at
    print(f"\ntakeover {takeover_s:.2f}s after SIGKILL (liveness TTL {TTL_S}s, sweep 0.2s)")
    # The idle reclaim is ten minutes here: only the liveness key explains this.
    assert takeover_s < TTL_S + 5.0
    assert await strings(redis, f"{key_prefix}deliveries") == ["stuck:2"]

    async def dead_member_gone() -> bool:
        rows: Any = await redis.xinfo_consumers(stream, "g")
        return [r["name"] for r in rows] == [b"offload-w2"]

    await eventually(dead_member_gone, what="the dead replica removed from the group")
    info: Any = await redis.xpending(stream, "g")
    assert info["pending"] == 0


async def test_sigterm_hands_back_unstarted_entries_at_once(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    """TTL 30 s: a takeover within seconds can only come from the hand-back."""
    stream = f"{key_prefix}mail.raw"
    common = {"REDIS_URL": redis_url, "LIVENESS_TTL": "30", "HOLD_SECONDS": "3.0"}
    for i in range(6):  # before w1 starts: its first read takes all six into its PEL
        await publish(redis, stream, raw(f"e{i}"))
    draining = await start_worker(redis, launch, key_prefix, "w1", **common)

    async def first_started() -> bool:
        return await strings(redis, f"{key_prefix}started") == ["e0"]

    await eventually(first_started, what="w1 busy with e0, the rest waiting in its batch")
    await start_worker(redis, launch, key_prefix, "w2", **common)
    draining.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()

    async def taken_by_w2() -> bool:
        rows: Any = await redis.xpending_range(stream, "g", min="-", max="+", count=10)
        owners = {r["consumer"] for r in rows}
        return bool(rows) and owners <= {b"offload-w1", b"offload-w2"} and b"offload-w2" in owners

    # Handed back at SIGTERM, not at the exit: w2 has them while w1 still drains e0.
    await eventually(taken_by_w2, timeout_s=20, what="w2 to take the handed-back entries")
    taken_s = time.monotonic() - stopped_at
    code = await asyncio.to_thread(draining.wait, 30)
    exited_s = time.monotonic() - stopped_at
    output = draining.stdout.read().decode()
    assert code == 0, output
    found = re.search(r"(\d+) unstarted entries on mail.raw handed back at stop", output)
    assert found, output
    handed_back = int(found.group(1))
    assert handed_back >= 3, output  # e0 (and at most e1 on a slow machine) ran before
    assert await redis.get(Keys(key_prefix).liveness("offload-w1")) is None
    print(
        f"\nhanded-back entries taken over {taken_s:.2f}s after SIGTERM; the draining"
        f" replica exited after {exited_s:.2f}s (liveness TTL 30s)"
    )
    assert taken_s < 10.0, "the live replica waited for the TTL instead"

    async def all_handled() -> bool:
        return len(await strings(redis, f"{key_prefix}handled")) == 6

    await eventually(all_handled, timeout_s=60, what="w2 to handle the handed-back entries")
    handled = await strings(redis, f"{key_prefix}handled")
    by_w1 = [h for h in handled if h.endswith(":w1")]
    assert by_w1[0] == "e0:w1", "the in-flight entry finished within the drain"
    assert len(by_w1) == 6 - handed_back, "only entries started before SIGTERM ran on w1"
    assert sorted(handled) == sorted([*by_w1, *(f"e{i}:w2" for i in range(len(by_w1), 6))]), (
        "each entry handled once"
    )
    deliveries = await strings(redis, f"{key_prefix}deliveries")
    assert sorted(deliveries) == [f"e{i}:1" for i in range(6)], "hand-back must not count"


async def test_lock_of_a_holder_without_liveness_key_is_taken(
    redis: Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    lock_key = keys.poller_lock
    holder = RedisLock(
        redis, lock_key, ttl_s=300, owner="ingest-a", liveness_prefix=keys.liveness("")
    )
    other = RedisLock(
        redis, lock_key, ttl_s=300, owner="ingest-b", liveness_prefix=keys.liveness("")
    )
    await redis.set(keys.liveness("ingest-a"), "1", px=60_000)
    assert await holder.acquire(reclaim_own=True)
    assert not await other.acquire(reclaim_own=True), "the holder is alive"
    await redis.delete(keys.liveness("ingest-a"))  # as its expiry after a crash
    assert await other.acquire(reclaim_own=True)
    assert await other.holder() == other.token
    assert not await holder.renew(), "the old holder learns it lost the lock"
    plain = RedisLock(redis, lock_key, ttl_s=300, owner="ingest-c")
    assert not await plain.acquire(reclaim_own=True), "no liveness prefix: TTL rules alone"
