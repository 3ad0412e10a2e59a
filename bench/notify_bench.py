"""Notify delivery throughput vs the raw httpx request rate, measured in the same run.

Both sides POST to one loopback receiver that answers 200 at once, with the
same concurrency. The notify side goes through the whole per-email path
(config read, routing, rules, durable job in Redis, rate-limit check, send,
sent marker, webhook log). Uses ``REDIS_URL`` if set, else a private
``redis-server``. ``run() -> dict``; ``python bench/notify_bench.py`` prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.events import DeliveryLink, MailOffloaded
from render_signal.common.keys import Keys
from render_signal.common.redisclient import create_redis
from render_signal.common.settings import EnvReader
from render_signal.common.streams import Delivery
from render_signal.devstack.receiver import Receiver
from render_signal.devstack.redisserver import RedisServer
from render_signal.notify.clock import SystemClock
from render_signal.notify.delivery import WebhookSender
from render_signal.notify.service import NotifyService
from render_signal.notify.settings import NotifySettings, read_settings


def _event(i: int) -> MailOffloaded:
    return MailOffloaded(
        event_id=f"bench-{i}",
        email_id=uuid.uuid4().hex,
        source="gmail_push",
        subject=f"Média Solution - Missions Recadrage - Lot {i}",
        sender_address="Agence <agence@media-solution.fr>",
        sender_email="agence@media-solution.fr",
        received_date="Mon, 30 Mar 2026 09:00:00 +0200",
        body_text="Bonjour, à faire pour 11h30. https://www.dropbox.com/scl/fo/abc " * 20,
        body_html="",
        links=(DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/scl/fo/abc"),),
        detector="recadrage",
        delivery_time="11h30",
        received_at=time.time(),
    )


def bench_settings(redis_url: str, url: str, prefix: str) -> NotifySettings:
    """Notify's settings for a bench run: dev mode, one signed target at ``url``."""
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "WEBHOOK_URL": url,
        "WEBHOOK_SIGNING_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    }
    return read_settings(EnvReader(env, {}))


async def _measure(redis_url: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    settings = bench_settings(redis_url, url, prefix)
    redis = create_redis(redis_url)
    sender = WebhookSender(
        settings.common.outbound_policy(), signing_secret=settings.signing_secret
    )
    service = NotifyService(
        settings, redis, ConfigWatcher(ConfigStore(redis, Keys(prefix))), SystemClock(), sender
    )
    gate = asyncio.Semaphore(concurrency)

    async def deliver(i: int) -> None:
        async with gate:
            await service.handle_event(_event(i), Delivery(f"{i}-0", 1, "mail.offloaded"))

    await asyncio.gather(*(deliver(-i - 1) for i in range(20)))  # warm-up
    started = time.perf_counter()
    await asyncio.gather(*(deliver(i) for i in range(n)))
    notify_s = time.perf_counter() - started
    delivered = sum(
        [1 async for _ in redis.scan_iter(match=Keys(prefix).notify_sent("*"), count=1000)]
    )

    body = json.dumps({"subject": "x" * 200, "email_content": "y" * 1500}).encode()
    async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as client:

        async def raw(_: int) -> None:
            async with gate:
                response = await client.post(url, content=body)
                response.raise_for_status()

        await asyncio.gather(*(raw(i) for i in range(20)))
        started = time.perf_counter()
        await asyncio.gather(*(raw(i) for i in range(n)))
        raw_s = time.perf_counter() - started

    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await sender.aclose()
    await redis.aclose()
    notify_rate = n / notify_s
    raw_rate = n / raw_s
    return {
        "emails": n,
        "concurrency": concurrency,
        "delivered": delivered - 20,
        "notify_deliveries_per_s": round(notify_rate, 1),
        "raw_httpx_requests_per_s": round(raw_rate, 1),
        "ratio_notify_vs_raw": round(notify_rate / raw_rate, 3),
    }


def run(n: int = 500, concurrency: int = 16) -> dict[str, Any]:
    receiver = Receiver(history=0).start()  # answers 200 {"success": true}, keeps nothing
    url = receiver.url
    redis_server: RedisServer | None = None
    try:
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            redis_server = RedisServer(Path(tempfile.mkdtemp()) / "redis", aof=False).start()
            redis_url = redis_server.url
        return asyncio.run(_measure(redis_url, url, n, concurrency))
    finally:
        receiver.stop()
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
