"""Entry point: ``render-signal-notify``."""

from __future__ import annotations

import asyncio
import logging

from render_signal.common.allocator import tune_allocator
from render_signal.common.appliedconfig import AppliedConfigReporter
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.consumer import Consumer
from render_signal.common.events import MailOffloaded
from render_signal.common.keys import GROUP_NOTIFY, consumer_name
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.logs import setup_logging
from render_signal.common.probes import ProbeResponder
from render_signal.common.records import HeartbeatDetails
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import WorkerRuntime, run_event_loop
from render_signal.common.settings import load_or_exit
from render_signal.notify.clock import Clock, SystemClock
from render_signal.notify.delivery import WebhookSender
from render_signal.notify.liveconfig import LIVE_DOCUMENTS
from render_signal.notify.makewatcher import MakeWatcher
from render_signal.notify.scheduler import Scheduler
from render_signal.notify.service import NotifyService
from render_signal.notify.settings import NotifySettings, applied_env, read_settings
from render_signal.notify.webhooktest import WebhookTest

__all__ = ["main", "run"]

logger = logging.getLogger(__name__)


async def run(settings: NotifySettings, clock: Clock | None = None) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    clock = clock or SystemClock()
    redis = create_redis(settings.common.redis_url)
    watcher = ConfigWatcher(ConfigStore(redis, settings.common.keys))
    reporter = AppliedConfigReporter(
        watcher,
        service="notify",
        instance=settings.common.instance,
        documents=LIVE_DOCUMENTS,
        env=applied_env(settings),
        interval_s=settings.common.heartbeat_interval_s,
    )
    sender = WebhookSender(
        settings.common.outbound_policy(),
        signing_secret=settings.signing_secret,
        fault=settings.fault,
    )
    service = NotifyService(settings, redis, watcher, clock, sender)
    runtime = WorkerRuntime(settings.common, redis)
    scheduler = Scheduler(
        service, settings.scheduler_interval_s, settings.concurrency, runtime.liveness
    )
    consumer: Consumer[MailOffloaded] = Consumer(
        redis,
        stream_key=settings.common.keys.mail_offloaded,
        group=GROUP_NOTIFY,
        consumer=consumer_name(GROUP_NOTIFY, settings.common.instance),
        event_type=MailOffloaded,
        handler=service.handle_event,
        concurrency=settings.concurrency,
        liveness=runtime.liveness,
    )
    if not settings.webhook_url:
        logger.warning(
            "NOTIFY: WEBHOOK_URL is empty (dev mode): no default webhook target; emails wait"
            " in the schedule (reason no_target) until a target is configured"
        )

    def details() -> HeartbeatDetails:
        return HeartbeatDetails(
            deferred=scheduler.deferred,
            handled=consumer.handled,
            config_versions=scheduler.config_versions(),
            gate=scheduler.gate,
        )

    probes = ProbeResponder(
        redis,
        settings.common.keys,
        service="notify",
        instance=settings.common.instance,
        handlers={"webhook": WebhookTest(settings, watcher, sender, service.outcomes)},
    )

    async def consume(stop: asyncio.Event) -> None:
        # Not before the scheduler has taken back this instance's leftover leases.
        await scheduler.wait_recovered(stop)
        if not stop.is_set():
            await consumer.run(stop)

    runtime.details = details

    async def hand_back() -> None:
        # Scale-down: jobs still leased here (cancelled at the drain deadline, or
        # parked by a failure) are due again for the other replicas at once.
        count = await service.queue.release(clock.now())
        if count:
            logger.info("NOTIFY: handed back %d in-flight job(s) at shutdown", count)

    runtime.on_release(hand_back)
    make = MakeWatcher(settings, watcher, clock)
    try:
        return await runtime.run(
            [consume, scheduler.run, watcher.listen, make.run, reporter.run, probes.run]
        )
    finally:
        await sender.aclose()


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("notify", settings.common.log_level, settings.common.log_format)
    tune_allocator()
    warn_legacy_variables(settings.common.env_set)
    raise SystemExit(run_event_loop(run(settings)))


if __name__ == "__main__":
    main()
