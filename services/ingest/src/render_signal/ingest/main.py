"""Entry point: ``render-signal-ingest``."""

from __future__ import annotations

import logging

from render_signal.common.allocator import tune_allocator
from render_signal.common.appliedconfig import AppliedConfigReporter
from render_signal.common.configdocs import PollingConfig, ProcessingPrefs, RuntimeFlags
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.logs import setup_logging
from render_signal.common.probes import ProbeResponder
from render_signal.common.records import HeartbeatDetails, ImapState
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import Component, WorkerRuntime, run_event_loop
from render_signal.common.settings import load_or_exit
from render_signal.ingest.imaptest import ImapTest
from render_signal.ingest.parser_service import run_parser
from render_signal.ingest.settings import IngestSettings, applied_env, read_settings
from render_signal.ingest.watcher import ImapWatcher

__all__ = ["main", "run"]

logger = logging.getLogger(__name__)


async def run(settings: IngestSettings) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    redis = create_redis(settings.common.redis_url)
    config = ConfigWatcher(ConfigStore(redis, settings.common.keys))
    runtime = WorkerRuntime(settings.common, redis)
    watcher = (
        ImapWatcher(settings, redis, config, liveness=runtime.liveness)
        if settings.imap_enabled
        else None
    )

    def details() -> HeartbeatDetails:
        return HeartbeatDetails(imap=watcher.state if watcher else ImapState(role="off"))

    def ready() -> tuple[bool, dict[str, object]]:
        """Not ready while this replica should hold the IMAP session and does not."""
        if watcher is None or watcher.state.role != "watching" or watcher.state.connected:
            return True, {}
        return False, {"imap": watcher.state.last_error or "not connected"}

    runtime.details, runtime.ready_check = details, ready
    probes = ProbeResponder(
        redis,
        settings.common.keys,
        service="ingest",
        instance=settings.common.instance,
        handlers={"imap": ImapTest(settings, watcher.endpoint if watcher else None)},
    )
    reporter = AppliedConfigReporter(
        config,
        service="ingest",
        instance=settings.common.instance,
        documents=(PollingConfig, RuntimeFlags, ProcessingPrefs),
        env=applied_env(settings),
        interval_s=settings.common.heartbeat_interval_s,
    )
    components: list[Component] = [reporter.run, probes.run]
    if watcher is not None:
        logger.info("BG_POLLER: IMAP watcher on (%s)", settings.imap_gate_reason)
        components.append(watcher.run)
    else:
        logger.info("BG_POLLER: IMAP watcher not started (%s)", settings.imap_gate_reason)
    components.append(
        lambda stop: run_parser(settings, redis, stop, watcher=config, liveness=runtime.liveness)
    )
    components.append(config.listen)
    return await runtime.run(components)


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("ingest", settings.common.log_level, settings.common.log_format)
    tune_allocator()
    warn_legacy_variables(settings.common.env_set)
    raise SystemExit(run_event_loop(run(settings)))


if __name__ == "__main__":
    main()
