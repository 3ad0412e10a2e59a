"""Config store (issue 2, acceptance 6): a write in one process reaches another."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from render_signal.common.configstore import ConfigConflict, ConfigStore, ConfigWatcher
from render_signal.devstack.polling import eventually


async def test_document_written_by_another_process_is_seen_without_restart(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    store = ConfigStore(redis, key_prefix)
    # A long staleness bound: only the change notification can explain a fast reload.
    watcher = ConfigWatcher(store, max_staleness_s=3600)
    stop = asyncio.Event()
    listener = asyncio.create_task(watcher.listen(stop))
    first = await watcher.get("webhook_config")
    assert first.version == 0 and first.data == {}

    async def subscribed() -> bool:
        channels: Any = await redis.pubsub_numsub(store.channel)
        return bool(channels[0][1] >= 1)

    await eventually(subscribed, what="the watcher's subscription")
    proc = launch("config", REDIS_URL=redis_url, PREFIX=key_prefix, VALUE="09h30")
    assert await asyncio.to_thread(proc.wait, 20) == 0

    async def reloaded() -> bool:
        return (await watcher.get("webhook_config")).version == 1

    await eventually(reloaded, what="the reader to see the new version")
    doc = await watcher.get("webhook_config")
    assert doc.data == {"webhook_time_start": "09h30"}
    assert doc.updated_at is not None and doc.updated_at.endswith("Z")
    api = doc.as_api()
    assert api["_version"] == 1 and api["_updated_at"] == doc.updated_at
    stop.set()
    await listener


async def test_stale_reader_catches_up_without_notifications(redis: Redis, key_prefix: str) -> None:
    store = ConfigStore(redis, key_prefix)
    watcher = ConfigWatcher(store, max_staleness_s=0.0)  # no listener running
    assert (await watcher.get("routing_rules")).version == 0
    await store.put("routing_rules", {"rules": []})
    assert (await watcher.get("routing_rules")).version == 1


async def test_optimistic_concurrency_and_merge(redis: Redis, key_prefix: str) -> None:
    store = ConfigStore(redis, key_prefix)
    await store.put("runtime_flags", {"a": True})
    try:
        await store.put("runtime_flags", {"a": False}, expected_version=0)
    except ConfigConflict:
        pass
    else:
        raise AssertionError("a write against a stale version must be refused")
    merged = await asyncio.gather(*(store.update("runtime_flags", {f"k{i}": i}) for i in range(5)))
    assert {m.version for m in merged} == {2, 3, 4, 5, 6}
    final = await store.get("runtime_flags")
    assert final.data == {"a": True, **{f"k{i}": i for i in range(5)}}, "no update lost"
