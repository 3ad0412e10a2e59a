"""Entry point: ``render-signal-ingest``."""

from __future__ import annotations

import asyncio
import logging

from render_signal.common.appliedconfig import AppliedConfigReporter
from render_signal.common.configdocs import PollingConfig, ProcessingPrefs, RuntimeFlags
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.logs import setup_logging
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import Component, WorkerRuntime
from render_signal.common.settings import load_or_exit
from render_signal.ingest.parser_service import run_parser
from render_signal.ingest.settings import IngestSettings, applied_env, read_settings
from render_signal.ingest.watcher import ImapWatcher

__all__ = ["main", "run"]

logger = logging.getLogger(__name__)


async def run(settings: IngestSettings) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    redis = create_redis(settings.common.redis_url)
    runtime = WorkerRuntime(settings.common, redis)
    config = ConfigWatcher(ConfigStore(redis, settings.common.keys))
    reporter = AppliedConfigReporter(
        config,
        service="ingest",
        instance=settings.common.instance,
        documents=(PollingConfig, RuntimeFlags, ProcessingPrefs),
        env=applied_env(settings),
        interval_s=settings.common.heartbeat_interval_s,
    )
    components: list[Component] = [reporter.run]
    if settings.imap_enabled:
        logger.info("BG_POLLER: IMAP watcher on (%s)", settings.imap_gate_reason)
        components.append(ImapWatcher(settings, redis, config).run)
    else:
        logger.info("BG_POLLER: IMAP watcher not started (%s)", settings.imap_gate_reason)
    components.append(lambda stop: run_parser(settings, redis, stop, watcher=config))
    components.append(config.listen)
    return await runtime.run(components)


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("ingest", settings.common.log_level, settings.common.log_format)
    warn_legacy_variables(settings.common.env_set)
    raise SystemExit(asyncio.run(run(settings)))


if __name__ == "__main__":
    main()
