"""Helpers shared by the offload tests: settings, events, an in-process service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from render_signal.common.consumer import Consumer
from render_signal.common.events import DeliveryLink, MailOffloaded, MailReceived, decode_entry
from render_signal.common.keys import GROUP_OFFLOAD, STREAM_MAIL_OFFLOADED, STREAM_MAIL_RECEIVED
from render_signal.common.linkjournal import LinkRecord, LinksFile
from render_signal.common.settings import EnvReader
from render_signal.common.streams import ensure_group, publish
from render_signal.common.timefmt import iso
from render_signal.devstack.polling import eventually
from render_signal.offload.main import build_service
from render_signal.offload.service import OffloadService
from render_signal.offload.settings import OffloadSettings, read_settings


def offload_env(redis_url: str, prefix: str, endpoint: str = "", **extra: str) -> dict[str, str]:
    env = {
        "RENDER_SIGNAL_ENV": "dev",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "R2_FETCH_ENABLED": "true" if endpoint else "false",
        "R2_FETCH_ENDPOINT": endpoint,
        "R2_FETCH_TOKEN": "standin-token-123" if endpoint else "",
        "R2_BUCKET_NAME": "render-signal-test",
        # In-process settings see only this dict: without it the links file would be
        # the default, relative to the checkout. The pytest plugin's scratch file.
        "WEBHOOK_LINKS_FILE": os.environ.get("WEBHOOK_LINKS_FILE")
        or str(Path(tempfile.gettempdir()) / "render-signal-offload-tests-links.json"),
        "OFFLOAD_METRICS_PORT": "0",
        "HEARTBEAT_INTERVAL_SECONDS": "0.2",
    }
    env.update(extra)
    return env


def make_settings(env: dict[str, str]) -> OffloadSettings:
    reader = EnvReader(env, {})
    settings = read_settings(reader)
    reader.check()
    return settings


def mail(email_id: str, *urls: tuple[str, str]) -> MailReceived:
    return MailReceived(
        event_id=f"ev-{email_id}",
        email_id=email_id,
        source="imap",
        subject=f"Files {email_id}",
        sender_address="Sender <sender@client.test>",
        sender_email="sender@client.test",
        received_date="2026-01-25T10:00:00Z",
        body_text="see links",
        body_html="",
        links=tuple(DeliveryLink(provider=p, raw_url=u) for p, u in urls),
    )


async def send(redis: Redis, prefix: str, event: MailReceived) -> None:
    await publish(redis, f"{prefix}{STREAM_MAIL_RECEIVED}", event)


async def read_offloaded(redis: Redis, prefix: str) -> list[tuple[str, MailOffloaded]]:
    rows: Any = await redis.xrange(f"{prefix}{STREAM_MAIL_OFFLOADED}")
    return [(i.decode(), decode_entry(f, MailOffloaded)) for i, f in rows]


async def wait_offloaded(
    redis: Redis, prefix: str, count: int, timeout_s: float = 20.0
) -> list[tuple[str, MailOffloaded]]:
    """Poll mail.offloaded until ``count`` entries exist (or fail at the deadline)."""

    async def enough() -> list[tuple[str, MailOffloaded]]:
        rows = await read_offloaded(redis, prefix)
        return rows if len(rows) >= count else []

    return await eventually(enough, timeout_s, f"{count} mail.offloaded entries")


@contextlib.asynccontextmanager
async def running_service(redis: Redis, settings: OffloadSettings) -> AsyncIterator[OffloadService]:
    """The real handler behind a real consumer group, in this event loop."""
    service = build_service(settings, redis)
    consumer: Consumer[MailReceived] = Consumer(
        redis,
        stream_key=settings.common.keys.stream(STREAM_MAIL_RECEIVED),
        group=GROUP_OFFLOAD,
        consumer="test-0",
        event_type=MailReceived,
        handler=service.handle,
        block_ms=100,
        concurrency=4,
    )
    await ensure_group(
        redis, settings.common.keys.stream(STREAM_MAIL_RECEIVED), GROUP_OFFLOAD, start_id="0"
    )
    await service.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield service
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await service.aclose()  # flushes the pending links-file rows


def make_entry(
    source_url: str, r2_url: str, provider: str, original_filename: str | None = None
) -> LinkRecord:
    """One links-file row, as offload writes it."""
    return LinkRecord(
        source_url=source_url,
        r2_url=r2_url,
        provider=provider,
        created_at=iso(),
        original_filename=original_filename,
    )


def links_writer(path: str, tag: str, count: int, cap: int) -> None:
    """A separate process appending ``count`` pairs (plus one shared pair each time)."""
    links = LinksFile(path, max_entries=cap)
    for i in range(count):
        entry = make_entry(f"https://fromsmash.com/{tag}{i}", f"https://r2/{tag}{i}", "fromsmash")
        links.append([entry])
        # Every writer also re-sends a shared pair: dedup must keep exactly one.
        links.append([make_entry("https://fromsmash.com/shared", "https://r2/shared", "fromsmash")])
