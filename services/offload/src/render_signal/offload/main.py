"""Entry point: ``render-signal-offload`` (``python -m render_signal.offload.main``).

One component: a consumer on ``mail.received`` (group ``offload``) whose
handler offloads each email's links to R2 and publishes ``mail.offloaded``.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from render_signal.common.allocator import tune_allocator
from render_signal.common.consumer import Consumer
from render_signal.common.events import MailReceived
from render_signal.common.keys import GROUP_OFFLOAD, consumer_name
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.linkjournal import LinkJournal, LinksFile
from render_signal.common.logs import mask_url, setup_logging
from render_signal.common.probes import ProbeResponder
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import Component, WorkerRuntime, run_event_loop
from render_signal.common.settings import load_or_exit
from render_signal.common.timeline import TimelineWriter
from render_signal.offload.breaker import CircuitBreaker
from render_signal.offload.linkswriter import LinksFileWriter
from render_signal.offload.service import OffloadService
from render_signal.offload.settings import OffloadSettings, read_settings
from render_signal.offload.worker_client import WorkerClient
from render_signal.offload.workertest import WorkerTest

__all__ = ["build_service", "claim_idle_ms", "main", "run"]

logger = logging.getLogger(__name__)


def claim_idle_ms(settings: OffloadSettings) -> int:
    """Retry an entry only once idle longer than the slowest possible handler run.

    This is the retry delay of a failed entry and the backstop for a live but
    stuck member; a dead member's entries are taken over through its liveness
    key within seconds, whatever this says (``common.streams``).
    """
    worst = settings.folder_timeout_s * (settings.retries + 1) + 2.0 * settings.retries
    return int(max(60.0, worst + 30.0) * 1000)


def build_service(settings: OffloadSettings, redis: Redis) -> OffloadService:
    """The handler object, with a Worker client only when offload is enabled."""
    keys = settings.common.keys
    client: WorkerClient | None = None
    if settings.enabled:
        client = WorkerClient(
            endpoint=settings.endpoint,
            token=settings.token,
            bucket=settings.bucket,
            timeout_s=settings.timeout_s,
            folder_timeout_s=settings.folder_timeout_s,
            retries=settings.retries,
            concurrency=settings.concurrency,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s),
            policy=settings.common.outbound_policy(),
        )
    writer: LinksFileWriter | None = None
    if settings.links_file:
        writer = LinksFileWriter(
            LinksFile(settings.links_file, settings.links_max_entries),
            redis,
            keys.links_file_staged,
        )
    return OffloadService(
        redis,
        keys=keys,
        client=client,
        journal=LinkJournal(redis, keys, max_age_s=settings.reuse_max_age_s),
        links_writer=writer,
        timeline=TimelineWriter.configured(redis, settings.common),
    )


async def run(settings: OffloadSettings) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    redis = create_redis(settings.common.redis_url)
    service = build_service(settings, redis)
    if settings.enabled:
        logger.info(
            "OFFLOAD: R2 offload enabled (endpoint %s, timeouts %.0fs/%.0fs, concurrency %d)",
            mask_url(settings.endpoint),
            settings.timeout_s,
            settings.folder_timeout_s,
            settings.concurrency,
        )
    else:
        logger.warning(
            "OFFLOAD: R2 offload disabled (needs R2_FETCH_ENABLED=true, R2_FETCH_ENDPOINT and"
            " R2_FETCH_TOKEN); emails pass through with their source links"
        )
    runtime = WorkerRuntime(settings.common, redis, details=service.details)
    consumer: Consumer[MailReceived] = Consumer(
        redis,
        stream_key=settings.common.keys.mail_received,
        group=GROUP_OFFLOAD,
        consumer=consumer_name(GROUP_OFFLOAD, settings.common.instance),
        event_type=MailReceived,
        handler=service.handle,
        batch_size=16,
        concurrency=max(4, settings.concurrency),
        claim_idle_ms=claim_idle_ms(settings),
        liveness=runtime.liveness,
    )

    async def consume(stop: asyncio.Event) -> None:
        # Staged links-file rows of a crashed run are recovered before reading.
        await service.start()
        try:
            await consumer.run(stop)
        finally:
            await service.close_links()  # pending file rows, within the drain

    probes = ProbeResponder(
        redis,
        settings.common.keys,
        service="offload",
        instance=settings.common.instance,
        handlers={"worker": WorkerTest(settings, service.client)},
    )
    components: list[Component] = [consume, probes.run]
    try:
        return await runtime.run(components)
    finally:
        await service.aclose()


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("offload", settings.common.log_level, settings.common.log_format)
    tune_allocator()
    warn_legacy_variables(settings.common.env_set)
    raise SystemExit(run_event_loop(run(settings)))


if __name__ == "__main__":
    main()
