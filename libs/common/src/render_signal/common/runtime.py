"""Process runtime for a worker service: signals, probes, heartbeat, bounded drain.

A service's ``main()`` reads its settings, calls :func:`setup_logging`, then
``asyncio.run(WorkerRuntime(...).run(components))``. Components are coroutines
taking the shared stop event; the runtime sets it on SIGTERM/SIGINT, lets them
drain until the deadline, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.heartbeat import Heartbeat
from render_signal.common.opsserver import OpsServer
from render_signal.common.records import HeartbeatDetails
from render_signal.common.settings import CommonSettings, warn_exposed_dev_mode

__all__ = ["Component", "WorkerRuntime", "install_stop_signals"]

logger = logging.getLogger(__name__)

Component = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` (once) and log the original's shutdown line."""
    loop = asyncio.get_running_loop()

    def _on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            logger.info("PROCESS: %s received; shutting down gracefully", name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum)


class WorkerRuntime:
    """Runs a worker's components with probes and a heartbeat."""

    def __init__(
        self,
        common: CommonSettings,
        redis: Redis,
        *,
        details: Callable[[], HeartbeatDetails] | None = None,
        ready_check: Callable[[], tuple[bool, dict[str, object]]] | None = None,
    ) -> None:
        self.common = common
        self.redis = redis
        self.stop = asyncio.Event()
        self.details = details
        #: The service's own readiness beyond Redis (e.g. ingest: IMAP connected).
        self.ready_check = ready_check
        self.ops: OpsServer | None = None

    async def ready(self) -> tuple[bool, dict[str, object]]:
        details: dict[str, object] = {}
        try:
            await asyncio.wait_for(self.redis.ping(), timeout=2)
            ok = True
        except (RedisError, OSError, TimeoutError) as exc:
            ok = False
            details["redis"] = type(exc).__name__
        if self.ready_check is not None:
            own, extra = self.ready_check()
            ok = ok and own
            details.update(extra)
        return ok, details

    async def run(self, components: list[Component]) -> int:
        """Run until stopped; returns the process exit code."""
        install_stop_signals(self.stop)
        warn_exposed_dev_mode(self.common, self.common.metrics_host, "METRICS_HOST")
        self.ops = OpsServer(self.common.metrics_host, self.common.metrics_port, self.ready)
        await self.ops.start()
        heartbeat = Heartbeat(
            self.redis,
            self.common.keys,
            service=self.common.service,
            instance=self.common.instance,
            interval_s=self.common.heartbeat_interval_s,
            details=self.details,
        )
        tasks = [
            asyncio.create_task(c(self.stop), name=getattr(c, "__qualname__", repr(c)))
            for c in components
        ]
        beat = asyncio.create_task(heartbeat.run(self.stop))
        logger.info("PROCESS: %s started (instance %s)", self.common.service, self.common.instance)
        exit_code = 0
        stopper = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is stopper:
                continue
            if task.exception() is not None:
                logger.error(
                    "PROCESS: component crashed: %r", task.exception(), exc_info=task.exception()
                )
                exit_code = 1
            elif not self.stop.is_set():
                # Components run until stopped: an early return is a bug, and exiting
                # non-zero makes the supervisor (or Kubernetes) restart the process.
                logger.error("PROCESS: component %s ended unexpectedly", task.get_name())
                exit_code = 1
        self.stop.set()
        deadline = time.monotonic() + self.common.drain_timeout_s
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            for task in late:
                task.cancel()
            if late:
                logger.warning(
                    "PROCESS: %d component(s) cancelled at the drain deadline", len(late)
                )
                await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(beat, timeout=2)
        await self.ops.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        logger.info("PROCESS: %s stopped", self.common.service)
        return exit_code
