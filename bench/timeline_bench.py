"""What the per-email timeline costs: CPU per email (ours and Redis's) and Redis bytes per email.

Writes, for ``n`` emails, exactly the calls the services make on a normal
delivery -- ingest's ``IngestHistory.published`` (received + parsed, with the
summary fields), offload's one ``offloaded`` event with two links, notify's
``attempt`` event (a 2.5 KB payload kept in full, response headers and
snippet) with the target's state -- through :class:`TimelineWriter`, against a
private ``redis-server``. Reports client CPU (``time.process_time``), Redis CPU
(``INFO cpu`` delta) and memory (``used_memory`` delta) per email. ``make
bench`` sets the CPU against the pipeline's own per-email CPU from the
end-to-end run (target: under 10 %). ``run() -> dict``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from render_signal.common.events import DeliveryLink, MailRaw, MailReceived
from render_signal.common.keys import Keys
from render_signal.common.records import DeliveryAttempt, LinkOutcome, TimelineEvent
from render_signal.common.redisclient import create_redis
from render_signal.common.timeline import TargetStatus, TimelineWriter
from render_signal.devstack.redisserver import RedisServer
from render_signal.ingest.history import IngestHistory

PAYLOAD = json.dumps(
    {
        "microsoft_graph_email_id": "x" * 32,
        "subject": "Média Solution - Missions Recadrage - Lot 42",
        "email_content": "Bonjour, à faire pour 11h30. https://www.dropbox.com/scl/fo/abc " * 32,
        "delivery_links": [{"provider": "dropbox", "raw_url": "https://www.dropbox.com/scl/fo/a"}],
    },
    ensure_ascii=False,
)


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _email(
    ingest: IngestHistory, offload: TimelineWriter, notify: TimelineWriter, i: int
) -> None:
    email_id = uuid.uuid4().hex
    raw = MailRaw(
        event_id=f"raw-{i}",
        source="http_raw",
        received_at=time.time(),
        raw=b"",
        original_size=14_000,
    )
    received = MailReceived(
        event_id=f"rcv-{i}",
        email_id=email_id,
        source="http_raw",
        subject=f"Média Solution - Missions Recadrage - Lot {i}",
        sender_address="Agence <agence@media-solution.fr>",
        sender_email="agence@media-solution.fr",
        received_date="Mon, 30 Mar 2026 09:00:00 +0200",
        body_text="",
        body_html="",
        links=(
            DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/scl/fo/a"),
            DeliveryLink(provider="swisstransfer", raw_url="https://www.swisstransfer.com/d/b"),
        ),
        detector="recadrage",
        received_at=raw.received_at,
    )
    await ingest.published(raw, received)
    links = [
        LinkOutcome(provider=link.provider, source_url=link.raw_url, r2=True)
        for link in received.links
    ]
    step = TimelineEvent(at=time.time(), kind="offloaded", service="offload", links=links)
    await offload.record(email_id, step, fields={"stage": "offloaded"})
    attempt = DeliveryAttempt(
        webhook_id=f"msg_{uuid.uuid4().hex}",
        target="default",
        url="https://hook.eu1.make.com/***",
        attempt=1,
        outcome="success",
        request_headers={"content-type": "application/json", "webhook-id": "msg_x"},
        payload=PAYLOAD,
        payload_bytes=len(PAYLOAD),
        status_code=200,
        response_headers={"content-type": "text/plain"},
        response_snippet="Accepted",
        duration_ms=120,
    )
    event = TimelineEvent(
        at=time.time(), kind="attempt", service="notify", attempt=attempt, target="default"
    )
    state = TargetStatus(webhook_id=attempt.webhook_id, name="default", state="delivered")
    await notify.record(email_id, event, target=state)


async def _measure(redis_url: str, n: int, concurrency: int) -> dict[str, Any]:
    redis = create_redis(redis_url)
    keys = Keys(f"bench:{uuid.uuid4().hex[:8]}:")
    ingest = IngestHistory(TimelineWriter(redis, keys, service="ingest", max_emails=n * 2))
    offload = TimelineWriter(redis, keys, service="offload", max_emails=n * 2)
    notify = TimelineWriter(redis, keys, service="notify", max_emails=n * 2)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await _email(ingest, offload, notify, i)

    await asyncio.gather(*(one(-i - 1) for i in range(50)))  # warm-up
    memory_before = int((await redis.info("memory"))["used_memory"])
    redis_before = await _redis_cpu(redis)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    client_s = time.process_time() - cpu_before
    wall_s = time.perf_counter() - wall_before
    redis_s = await _redis_cpu(redis) - redis_before
    memory = int((await redis.info("memory"))["used_memory"]) - memory_before
    await redis.aclose()
    return {
        "emails": n,
        "client_cpu_ms_per_email": round(client_s * 1000 / n, 3),
        "redis_cpu_ms_per_email": round(redis_s * 1000 / n, 3),
        "cpu_ms_per_email": round((client_s + redis_s) * 1000 / n, 3),
        "redis_bytes_per_email": round(memory / n),
        "emails_per_s": round(n / wall_s, 1),
    }


def run(n: int = 2000, concurrency: int = 16) -> dict[str, Any]:
    server = RedisServer(Path(tempfile.mkdtemp()) / "redis", aof=False).start()
    try:
        return asyncio.run(_measure(server.url, n, concurrency))
    finally:
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
