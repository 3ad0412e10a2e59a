"""The Redis lock (issue 2, acceptance 5): one holder, renewal, takeover, safe release."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from redis.asyncio import Redis
from render_signal.common.locks import RedisLock
from render_signal.devstack.polling import eventually


async def test_two_contenders_one_holder_and_release_is_owner_only(
    redis: Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}poller_lock"
    first, second = RedisLock(redis, key, ttl_s=5), RedisLock(redis, key, ttl_s=5)
    results = await asyncio.gather(first.acquire(), second.acquire())
    assert sorted(results) == [False, True]
    holder, other = (first, second) if results[0] else (second, first)
    assert await other.release() is False, "a non-owner's release must not delete the lock"
    assert await holder.holder() == holder.token
    assert await holder.release() is True
    assert await redis.get(key) is None
    assert await other.acquire() is True


async def test_renewal_keeps_the_lock_past_its_ttl(redis: Redis, key_prefix: str) -> None:
    key = f"{key_prefix}poller_lock"
    lock = RedisLock(redis, key, ttl_s=0.6)
    assert await lock.acquire()
    stop, lost = asyncio.Event(), asyncio.Event()
    renewer = asyncio.create_task(lock.keep_renewed(lost, stop))
    contender = RedisLock(redis, key, ttl_s=0.6)
    started = time.monotonic()
    # Keep trying to steal it for three TTLs: renewal must keep the holder in place.
    while time.monotonic() - started < 1.8:
        assert not await contender.acquire(), "lock was lost despite renewal"
        await asyncio.sleep(0.05)
    stop.set()
    await renewer
    assert not lost.is_set()
    assert await lock.holder() == lock.token


async def test_renewal_reports_a_lost_lock(redis: Redis, key_prefix: str) -> None:
    key = f"{key_prefix}poller_lock"
    lock = RedisLock(redis, key, ttl_s=0.3)
    assert await lock.acquire()
    await redis.set(key, "someone-else")  # e.g. expired during a long pause, then taken
    stop, lost = asyncio.Event(), asyncio.Event()
    await asyncio.wait_for(lock.keep_renewed(lost, stop), timeout=5)
    assert lost.is_set()
    assert await redis.get(key) == b"someone-else", "renewal must not overwrite the new owner"


async def test_holder_killed_is_replaced_within_one_ttl(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    ttl = 2.0
    env = {"REDIS_URL": redis_url, "PREFIX": key_prefix, "TTL": str(ttl)}
    first = launch("lock", NAME="a", **env)

    async def one_holder() -> bool:
        return int(await redis.llen(f"{key_prefix}holders")) == 1

    await eventually(one_holder, what="the first holder")
    second = launch("lock", NAME="b", **env)
    # b keeps trying; while a renews, b must not get it (well past one TTL).
    await asyncio.sleep(ttl * 1.5)  # observation window for a negative check
    assert int(await redis.llen(f"{key_prefix}holders")) == 1
    killed_at = time.time()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    async def two_holders() -> bool:
        return int(await redis.llen(f"{key_prefix}holders")) == 2

    await eventually(two_holders, timeout_s=ttl * 3, what="the takeover")
    entries: Any = await redis.lrange(f"{key_prefix}holders", 0, -1)
    name, at = entries[1].decode().split(":")
    assert name == "b"
    assert float(at) - killed_at <= ttl + 0.5, "takeover later than one TTL after the kill"
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0

    async def released() -> bool:
        return await redis.get(f"{key_prefix}poller_lock") is None

    await eventually(released, what="release on shutdown")


async def test_a_restarted_replica_reclaims_its_own_lock_but_not_anothers(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    key = f"{key_prefix}poller_lock"
    env = {"REDIS_URL": redis_url, "PREFIX": key_prefix, "TTL": "300"}
    holder = launch("lock", NAME="a", **env)

    async def held() -> bool:
        return int(await redis.llen(f"{key_prefix}holders")) == 1

    await eventually(held, what="the first holder")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    dead_token = (await redis.get(key) or b"").decode()
    assert dead_token, "a SIGKILLed holder leaves its lock behind (TTL 300 s)"

    stranger = RedisLock(redis, key, ttl_s=300, owner="replica-b")
    assert not await stranger.acquire(reclaim_own=True), "another replica must wait"
    # The procs.py holder's owner is host:pid; a restart of the same replica has the same
    # stable owner name, so rebuild that name from the dead token.
    owner = dead_token.rsplit(":", 1)[0]
    restarted = RedisLock(redis, key, ttl_s=300, owner=owner)
    assert await restarted.acquire(reclaim_own=True)
    assert await restarted.holder() == restarted.token != dead_token
