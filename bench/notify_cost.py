"""What notify costs per delivered email: CPU (its event loop and Redis) and Redis traffic.

Unlike ``notify_bench`` (throughput against raw httpx, small bodies), this puts
realistic emails on ``mail.offloaded`` first -- bodies of ~50 KB, one in ten of
~500 KB, HTML with quotes and accents -- then runs notify's real stream consumer
until every one is delivered to a loopback receiver, and reports per email:

* ``notify_cpu_ms``: CPU time of the event-loop thread (the receiver answers from
  threads of its own, left out), i.e. notify's own work including the HTTP send;
* ``redis_cpu_ms``: the private ``redis-server``'s user + system CPU;
* ``redis_calls`` per command (INFO commandstats; a script counts as one EVALSHA
  plus the commands it runs), ``round_trips`` (commands and pipelines as the
  client sent them, counted on the connection), ``bytes_to_redis`` and
  ``bytes_from_redis`` (INFO total_net_input/output_bytes).

``python -m bench.notify_cost [n]`` prints JSON. Compare runs back to back: the
machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.consumer import Consumer
from render_signal.common.events import DeliveryLink, MailOffloaded, encode_entry
from render_signal.common.keys import GROUP_NOTIFY, Keys
from render_signal.common.redisclient import create_redis
from render_signal.devstack.receiver import Receiver
from render_signal.devstack.redisserver import RedisServer
from render_signal.notify.clock import SystemClock
from render_signal.notify.delivery import WebhookSender
from render_signal.notify.service import NotifyService

from bench.notify_bench import bench_settings

_PARAGRAPH = (
    '<p style="margin:0 0 12px 0;font-family:Arial">Bonjour, voici les fichiers à traiter'
    ' pour 11h30 : <a href="https://www.dropbox.com/scl/fo/abc?rlkey=x&amp;dl=0">lien</a>'
    " — merci de confirmer la réception.</p>\n"
)


def _event(i: int) -> MailOffloaded:
    size = 500_000 if i % 10 == 9 else 50_000
    html = _PARAGRAPH * (size * 4 // 5 // len(_PARAGRAPH))
    text = "Bonjour, à faire pour 11h30. https://www.dropbox.com/scl/fo/abc\n" * (size // 5 // 64)
    return MailOffloaded(
        event_id=f"cost-{i}",
        email_id=uuid.uuid4().hex,
        source="imap",
        subject=f"Média Solution - Missions Recadrage - Lot {i}",
        sender_address="Agence <agence@media-solution.fr>",
        sender_email="agence@media-solution.fr",
        received_date="Mon, 30 Mar 2026 09:00:00 +0200",
        body_text=text,
        body_html=html,
        links=(DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/scl/fo/abc"),),
        detector="recadrage",
        delivery_time="11h30",
        received_at=time.time(),
    )


class _Counter:
    """Counts what the client sends as one round trip (a command or a pipeline)."""

    def __init__(self) -> None:
        self.round_trips = 0

    def install(self, redis: Redis) -> None:
        execute, pipeline = redis.execute_command, redis.pipeline

        async def counted(*args: Any, **options: Any) -> Any:
            self.round_trips += 1
            return await execute(*args, **options)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Pipeline:
            pipe = pipeline(*args, **kwargs)
            run = pipe.execute

            async def execute_pipe(*a: Any, **k: Any) -> Any:
                self.round_trips += 1
                return await run(*a, **k)

            pipe.execute = execute_pipe  # type: ignore[method-assign]
            # A pipeline's own commands are queued, not sent: don't count them.
            pipe.execute_command = pipe.pipeline_execute_command  # type: ignore[method-assign]
            return pipe

        redis.execute_command = counted  # type: ignore[method-assign]
        redis.pipeline = counted_pipeline  # type: ignore[method-assign]


async def _stats(redis: Redis) -> dict[str, float]:
    info: Any = await redis.info("all")
    out = {
        "in": float(info["total_net_input_bytes"]),
        "out": float(info["total_net_output_bytes"]),
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
    }
    for key, value in info.items():
        if key.startswith("cmdstat_"):
            out[key[8:]] = float(value["calls"])
    return out


async def _measure(redis_url: str, url: str, n: int) -> dict[str, Any]:
    prefix = f"cost:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix)
    settings = bench_settings(redis_url, url, prefix)
    admin = create_redis(redis_url)
    redis = create_redis(redis_url)
    sender = WebhookSender(
        settings.common.outbound_policy(), signing_secret=settings.signing_secret
    )
    service = NotifyService(
        settings, redis, ConfigWatcher(ConfigStore(redis, keys)), SystemClock(), sender
    )
    stop = asyncio.Event()
    consumer: Consumer[MailOffloaded] = Consumer(
        redis,
        stream_key=keys.mail_offloaded,
        group=GROUP_NOTIFY,
        consumer="notify-cost",
        event_type=MailOffloaded,
        handler=service.handle_event,
        concurrency=settings.concurrency,
        trim_interval_s=3600.0,
    )
    warm = 20
    for i in range(warm + n):
        await admin.xadd(keys.mail_offloaded, encode_entry(_event(i)))  # type: ignore[arg-type]
    counter = _Counter()
    counter.install(redis)
    running = asyncio.create_task(consumer.run(stop))
    while consumer.handled < warm:
        await asyncio.sleep(0.001)
    before, cpu0, trips0 = await _stats(admin), time.thread_time(), counter.round_trips
    while consumer.handled < warm + n:
        await asyncio.sleep(0.001)
    cpu1, trips1, after = time.thread_time(), counter.round_trips, await _stats(admin)
    stop.set()
    await running
    delivered = len([k async for k in admin.scan_iter(match=keys.notify_sent("*"), count=1000)])
    calls = {
        name: round((after[name] - before.get(name, 0.0)) / n, 2)
        for name in sorted(after)
        if name not in ("in", "out", "cpu") and after[name] != before.get(name, 0.0)
    }
    calls.pop("info", None)
    await sender.aclose()
    await redis.aclose()
    await admin.aclose()
    return {
        "emails": n,
        "delivered": delivered - warm,
        "notify_cpu_ms": round((cpu1 - cpu0) * 1000 / n, 3),
        "redis_cpu_ms": round((after["cpu"] - before["cpu"]) * 1000 / n, 3),
        "round_trips": round((trips1 - trips0) / n, 2),
        "bytes_to_redis": round((after["in"] - before["in"]) / n),
        "bytes_from_redis": round((after["out"] - before["out"]) / n),
        "redis_calls": calls,
    }


def run(n: int = 200) -> dict[str, Any]:
    receiver = Receiver(history=0).start()  # answers 200 {"success": true}, keeps nothing
    redis_server = RedisServer(Path(tempfile.mkdtemp()) / "redis", aof=False).start()
    try:
        return asyncio.run(_measure(redis_server.url, receiver.url, n))
    finally:
        receiver.stop()
        redis_server.stop()


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=2))
