"""Child processes for the common-runtime tests (run as ``python procs.py ROLE``).

Real processes are needed to prove crash behaviour: SIGKILL mid-handler,
SIGTERM drain, a lock holder dying. Each role reads its parameters from the
environment and records what it did in Redis, where the test reads it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from render_signal.common.configdocs import WebhookConfig
from render_signal.common.configstore import ConfigStore
from render_signal.common.consumer import Consumer
from render_signal.common.events import MailRaw
from render_signal.common.keys import Keys
from render_signal.common.locks import RedisLock
from render_signal.common.logs import setup_logging
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import install_stop_signals
from render_signal.common.streams import Delivery


async def consumer() -> None:
    """Consume; record handled ids in ``<prefix>handled``; block on ids in BLOCK_IDS."""
    prefix = os.environ["PREFIX"]
    redis = create_redis(os.environ["REDIS_URL"], block_ms=200)
    block_ids = set(filter(None, os.environ.get("BLOCK_IDS", "").split(",")))
    hold_s = float(os.environ.get("HOLD_SECONDS", "0"))
    stop = asyncio.Event()
    install_stop_signals(stop)

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        await redis.rpush(f"{prefix}started", event.event_id)
        if event.event_id in block_ids:
            await asyncio.sleep(3600)  # stands in for a handler stuck mid-work
        if hold_s:
            await asyncio.sleep(hold_s)  # a slow side effect, for the drain test
        await redis.rpush(f"{prefix}handled", f"{event.event_id}:{os.environ['NAME']}")

    c = Consumer(
        redis,
        stream_key=f"{prefix}mail.raw",
        group="g",
        consumer=os.environ["NAME"],
        event_type=MailRaw,
        handler=handler,
        batch_size=int(os.environ.get("BATCH", "10")),
        concurrency=int(os.environ.get("CONCURRENCY", "10")),
        block_ms=200,
        claim_idle_ms=int(os.environ.get("CLAIM_IDLE_MS", "500")),
    )
    await redis.set(f"{prefix}ready:{os.environ['NAME']}", "1")
    await c.run(stop, drain_timeout_s=float(os.environ.get("DRAIN", "10")))
    await redis.rpush(f"{prefix}exited", os.environ["NAME"])
    await redis.aclose()


async def worker() -> None:
    """A consumer under the real WorkerRuntime (liveness, drain, hand-back).

    Service ``offload`` instance NAME, group ``g``; records like ``consumer``,
    plus each handled entry's delivery count in ``<prefix>deliveries``.
    """
    from render_signal.common.keys import consumer_name
    from render_signal.common.runtime import WorkerRuntime
    from render_signal.common.settings import EnvReader, read_common

    prefix = os.environ["PREFIX"]
    name = os.environ["NAME"]
    env = {
        "REDIS_URL": os.environ["REDIS_URL"],
        "REDIS_KEY_PREFIX": prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "RENDER_SIGNAL_INSTANCE": name,
        "OFFLOAD_METRICS_PORT": "0",
        "LIVENESS_TTL_SECONDS": os.environ.get("LIVENESS_TTL", "8"),
        "DRAIN_TIMEOUT_SECONDS": os.environ.get("DRAIN", "10"),
    }
    common = read_common(EnvReader(env, {}), "offload")
    redis = create_redis(common.redis_url, block_ms=200)
    block_ids = set(filter(None, os.environ.get("BLOCK_IDS", "").split(",")))
    hold_s = float(os.environ.get("HOLD_SECONDS", "0"))
    runtime = WorkerRuntime(common, redis)

    async def handler(event: MailRaw, delivery: Delivery) -> None:
        await redis.rpush(f"{prefix}started", event.event_id)
        if event.event_id in block_ids:
            await asyncio.sleep(3600)  # stands in for a handler alive but slow
        if hold_s:
            await asyncio.sleep(hold_s)  # a slow side effect, for the drain test
        await redis.rpush(f"{prefix}deliveries", f"{event.event_id}:{delivery.deliveries}")
        await redis.rpush(f"{prefix}handled", f"{event.event_id}:{name}")

    c = Consumer(
        redis,
        stream_key=f"{prefix}mail.raw",
        group="g",
        consumer=consumer_name("offload", name),
        event_type=MailRaw,
        handler=handler,
        batch_size=int(os.environ.get("BATCH", "10")),
        concurrency=int(os.environ.get("CONCURRENCY", "1")),
        block_ms=200,
        claim_idle_ms=int(os.environ.get("CLAIM_IDLE_MS", "600000")),
        liveness=runtime.liveness,
        takeover_interval_s=float(os.environ.get("TAKEOVER_INTERVAL", "0.2")),
    )

    async def consume(stop: asyncio.Event) -> None:
        await runtime.liveness.wait_established(stop)
        await redis.set(f"{prefix}ready:{name}", "1")
        await c.run(stop, drain_timeout_s=common.drain_timeout_s)

    code = await runtime.run([consume])
    raise SystemExit(code)


async def lock_holder() -> None:
    """Acquire the lock (retrying), record holding, keep it renewed until killed."""
    prefix = os.environ["PREFIX"]
    redis = create_redis(os.environ["REDIS_URL"])
    lock = RedisLock(redis, f"{prefix}poller_lock", ttl_s=float(os.environ["TTL"]))
    stop, lost = asyncio.Event(), asyncio.Event()
    install_stop_signals(stop)
    while not await lock.acquire():
        if stop.is_set():
            return
        await asyncio.sleep(0.1)  # contention retry interval, not synchronisation
    await redis.rpush(f"{prefix}holders", f"{os.environ['NAME']}:{time.time()}")
    await lock.keep_renewed(lost, stop)
    await lock.release()
    await redis.aclose()


async def config_writer() -> None:
    redis = create_redis(os.environ["REDIS_URL"])
    store = ConfigStore(redis, Keys(os.environ["PREFIX"]))
    start, end = os.environ["VALUE"].split("-")
    await store.write(WebhookConfig(webhook_time_start=start, webhook_time_end=end))
    await redis.aclose()


if __name__ == "__main__":
    setup_logging("test-proc", "INFO", "text")
    role = sys.argv[1]
    roles = {"consumer": consumer, "worker": worker, "lock": lock_holder, "config": config_writer}
    asyncio.run(roles[role]())
