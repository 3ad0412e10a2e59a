"""Offload throughput vs raw XREADGROUP+XADD, measured in the same run.

* ``raw``: a bare consumer-group loop (XREADGROUP COUNT 16, XADD each entry to
  another stream, XACK) over the same number of entries: the Redis ceiling.
* ``service``: the offload service's real handler path behind the real
  :class:`Consumer` (done-marker check, normalisation, allowlist, journal
  lookup, one Worker POST per link through the breaker and the global
  semaphore, journal write, atomic publish-once) with a loopback Worker
  stand-in that answers success at once. One unique link per email.
* ``disabled``: the same path with offload disabled (pass-through).

Per phase it also reports process CPU time per event (``time.process_time``:
all threads of this process, so the in-process Worker stand-in and the bench
loop are included; compare runs, not absolute values) and, for ``service``,
the rate including the final links-file flush on shutdown (rows are written
to ``WEBHOOK_LINKS_FILE`` in coalesced batches, off the per-email path) and
the number of rows in the file afterwards.

Uses ``REDIS_URL`` if set, else a private ``redis-server``. ``run() -> dict``;
``python bench/offload_bench.py [N]`` prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from render_signal.common.consumer import Consumer
from render_signal.common.events import DeliveryLink, MailReceived, encode_entry
from render_signal.common.keys import GROUP_OFFLOAD as GROUP
from render_signal.common.keys import STREAM_MAIL_OFFLOADED, STREAM_MAIL_RECEIVED
from render_signal.common.redisclient import create_redis
from render_signal.common.settings import EnvReader
from render_signal.common.streams import ensure_group
from render_signal.devstack.polling import eventually
from render_signal.devstack.redisserver import RedisServer
from render_signal.offload.main import build_service
from render_signal.offload.settings import read_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "offload" / "tests"))
from standin import WorkerStandIn


def _event(i: int) -> MailReceived:
    return MailReceived(
        event_id=f"bench-{i}",
        email_id=uuid.uuid4().hex,
        source="gmail_push",
        subject=f"Bench {i}",
        sender_address="bench@client.test",
        sender_email="bench@client.test",
        received_date="2026-01-25T10:00:00Z",
        body_text="x" * 500,
        body_html="",
        links=(DeliveryLink(provider="fromsmash", raw_url=f"https://fromsmash.com/B{i}x"),),
    )


async def _fill(redis: Redis, stream: str, n: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.xadd(stream, encode_entry(_event(i)))  # type: ignore[arg-type]
        await pipe.execute()


async def _wait_len(redis: Redis, stream: str, n: int, timeout_s: float = 300) -> None:
    async def reached() -> bool:
        return int(await redis.xlen(stream)) >= n

    # Polled often: the measured time ends when the last entry is seen.
    await eventually(reached, timeout_s, f"{stream} to reach {n}", interval_s=0.005)


async def _raw(redis: Redis, prefix: str, n: int) -> tuple[float, float]:
    src, dst = f"{prefix}raw.in", f"{prefix}raw.out"
    await _fill(redis, src, n)
    await ensure_group(redis, src, "g", start_id="0")
    cpu = time.process_time()
    started = time.perf_counter()
    done = 0
    while done < n:
        response: Any = await redis.xreadgroup("g", "c", {src: ">"}, count=16, block=100)
        for _stream, items in response or []:
            for entry_id, fields in items:
                await redis.xadd(dst, fields)
                await redis.xack(src, "g", entry_id)
                done += 1
    return time.perf_counter() - started, time.process_time() - cpu


async def _service(
    redis: Redis, redis_url: str, prefix: str, n: int, endpoint: str
) -> dict[str, float]:
    links_file = Path(tempfile.mkdtemp()) / "webhook_links.json"
    env = {
        "RENDER_SIGNAL_ENV": "dev",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "R2_FETCH_ENABLED": "true" if endpoint else "false",
        "R2_FETCH_ENDPOINT": endpoint,
        "R2_FETCH_TOKEN": "bench-token-1234" if endpoint else "",
        "WEBHOOK_LINKS_FILE": os.environ.get("BENCH_LINKS", str(links_file)),
    }
    settings = read_settings(EnvReader(env, {}))
    service = build_service(settings, redis)
    stream = f"{prefix}{STREAM_MAIL_RECEIVED}"
    await _fill(redis, stream, n)
    await ensure_group(redis, stream, GROUP, start_id="0")
    consumer: Consumer[MailReceived] = Consumer(
        redis,
        stream_key=stream,
        group=GROUP,
        consumer="bench-0",
        event_type=MailReceived,
        handler=service.handle,
        batch_size=16,
        concurrency=max(4, settings.concurrency),
        block_ms=100,
    )
    await service.start()
    stop = asyncio.Event()
    cpu = time.process_time()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop))
    await _wait_len(redis, f"{prefix}{STREAM_MAIL_OFFLOADED}", n)
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    stop.set()
    await task
    await service.aclose()  # flushes the pending links-file rows
    flushed = time.perf_counter() - started
    path = Path(settings.links_file)
    rows = len(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else 0
    return {"elapsed": elapsed, "cpu": cpu_s, "flushed": flushed, "file_rows": rows}


async def _main(n: int) -> dict[str, Any]:
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        server = RedisServer(Path(tempfile.mkdtemp()) / "redis", aof=False).start()
        url = server.url
    redis = create_redis(url)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    try:
        raw_s, raw_cpu = await _raw(redis, prefix, n)
        with WorkerStandIn("ok") as worker:
            on = await _service(redis, url, prefix + "on:", n, worker.url)
            calls = worker.count()
        off = await _service(redis, url, prefix + "off:", n, "")
        service_s, disabled_s = on["elapsed"], off["elapsed"]
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        if server is not None:
            server.stop()
    return {
        "events": n,
        "raw_xreadgroup_xadd_per_s": round(n / raw_s, 1),
        "service_with_worker_per_s": round(n / service_s, 1),
        "service_disabled_per_s": round(n / disabled_s, 1),
        "service_with_worker_incl_final_flush_per_s": round(n / on["flushed"], 1),
        "cpu_ms_per_event_raw": round(raw_cpu * 1000 / n, 3),
        "cpu_ms_per_event_service_with_worker": round(on["cpu"] * 1000 / n, 3),
        "cpu_ms_per_event_service_disabled": round(off["cpu"] * 1000 / n, 3),
        "links_file_rows": on["file_rows"],
        "worker_calls": calls,
        "ratio_service_vs_raw": round(raw_s / service_s, 3),
        "ratio_disabled_vs_raw": round(raw_s / disabled_s, 3),
    }


def run(n: int = 2000) -> dict[str, Any]:
    """Run the benchmark over ``n`` events; returns the rates and ratios."""
    return asyncio.run(_main(n))


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=2))
