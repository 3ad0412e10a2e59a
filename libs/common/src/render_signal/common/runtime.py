"""Process runtime for a worker service: signals, probes, heartbeat, liveness, bounded drain.

A service's ``main()`` reads its settings, calls :func:`setup_logging`, then
``asyncio.run(WorkerRuntime(...).run(components))``. Components are coroutines
taking the shared stop event; the runtime sets it on SIGTERM/SIGINT, lets them
drain until the deadline, then cancels what is left.

The runtime also keeps this process's liveness key (``common.liveness``)
from before the components start until after they drained. Scale-down hands
work back in this order: components finish or cancel their in-flight work,
the release steps (:meth:`WorkerRuntime.on_release`) give back what is still
held (notify's leases), then the liveness key is deleted, so other replicas
take over whatever is left at their next sweep instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.heartbeat import Heartbeat
from render_signal.common.keys import consumer_name
from render_signal.common.liveness import Liveness
from render_signal.common.opsserver import OpsServer
from render_signal.common.records import HeartbeatDetails
from render_signal.common.settings import CommonSettings, warn_exposed_dev_mode

__all__ = ["Component", "WorkerRuntime", "install_stop_signals", "run_event_loop"]

logger = logging.getLogger(__name__)

#: Bound on each Redis step of the shutdown (release, liveness delete): with Redis
#: down, the process still exits promptly; what it held then waits for the TTL.
SHUTDOWN_STEP_S = 3.0
#: Share of DRAIN_TIMEOUT_SECONDS kept for the hand-back (release steps, liveness key).
HAND_BACK_SHARE = 0.25
EXIT_MARGIN_S = 0.5

Component = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def run_event_loop(main: Coroutine[object, None, int]) -> int:
    """``asyncio.run(main)`` on uvloop when it is installed (Linux, macOS), whose
    process ends at most :data:`EXIT_MARGIN_S` after ``main`` returned.

    uvloop's C event loop and transports halve the per-callback and per-socket
    write overhead of the pure-Python selector loop, which was 20-30 % of the
    workers' profiles under load (bench/results/flame-*-before.svg:
    ``_run_once``, ``_SelectorSocketTransport.write``). Semantics are asyncio's.

    Why the bound: closing the loop waits for every name lookup still running in
    the resolver's threads, and a lookup cannot be cancelled. When Redis's host
    name stops resolving and the DNS server does not answer (compose's DNS while
    the Redis container is stopped), each reconnect attempt leaves a lookup of up
    to 20 s behind (glibc: 5 s timeout, 2 attempts, A and AAAA), and the close
    waited for all of them: the workers outlived compose's 30 s stop grace and
    were SIGKILLed. What the service had to do is done once ``main`` returns
    (drained, handed back, logged), so the exit no longer waits for them.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        factory = None
    else:
        factory = uvloop.new_event_loop
    code = 1
    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            code = runner.run(main)
        finally:
            _exit_unless_closed(code, EXIT_MARGIN_S)
    return code


def _exit_unless_closed(code: int, within_s: float) -> None:
    """End the process with ``code`` if it is still alive ``within_s`` from now
    (a daemon timer: a process that exits first is not held by it)."""

    def force() -> None:
        logger.warning(
            "PROCESS: still closing %.1fs after the stop (name lookups that do not"
            " answer: does Redis's host name resolve?); exiting now with code %d",
            within_s,
            code,
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    timer = threading.Timer(within_s, force)
    timer.daemon = True
    timer.start()


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
        #: This process's liveness key; consumers, schedulers and locks that can be
        #: taken over take it so they start only once it exists.
        self.liveness = Liveness(
            redis,
            common.keys,
            consumer_name(common.service, common.instance),
            common.liveness_ttl_s,
        )
        self._release_steps: list[Callable[[], Awaitable[object]]] = []

    def on_release(self, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` after the components drained, before the liveness key goes."""
        self._release_steps.append(step)

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
        # Until the drain is over: work finishing after SIGTERM is still ours.
        drained = asyncio.Event()
        live = asyncio.create_task(self.liveness.run(drained))
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
        # One deadline for the whole stop, so SIGTERM is honoured within
        # DRAIN_TIMEOUT_SECONDS even when Redis is gone or frozen (every call
        # to it would otherwise wait out its own socket timeout). The
        # components get most of it; the hand-back keeps a share.
        deadline = Deadline(self.common.drain_timeout_s)
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=deadline.left(keep=HAND_BACK_SHARE))
            for task in late:
                task.cancel()
            if late:
                logger.warning(
                    "PROCESS: %d component(s) cancelled at the drain deadline", len(late)
                )
                await asyncio.wait(late, timeout=deadline.step(SHUTDOWN_STEP_S))
        await self._hand_back(drained, live, deadline)
        await finish(beat, deadline.step(2.0))  # it deletes its key once stopped
        await self.ops.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), timeout=max(0.05, deadline.left()))
        logger.info("PROCESS: %s stopped", self.common.service)
        return exit_code

    async def _hand_back(
        self, drained: asyncio.Event, live: asyncio.Task[None], deadline: Deadline
    ) -> None:
        """Release steps, then delete the liveness key, all before ``deadline``."""
        for step in self._release_steps:
            try:
                await asyncio.wait_for(step(), timeout=deadline.step(SHUTDOWN_STEP_S))
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning("PROCESS: release step failed (%s)", type(exc).__name__)
        drained.set()
        await finish(live, deadline.step(SHUTDOWN_STEP_S))
        try:
            released = await asyncio.wait_for(
                self.liveness.release(), timeout=deadline.step(SHUTDOWN_STEP_S)
            )
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning(
                "PROCESS: liveness key not deleted (%s); other replicas take over after %.0fs",
                type(exc).__name__,
                self.liveness.ttl_s,
            )
        else:
            if released:
                logger.info("PROCESS: liveness released; other replicas take over what is left")


async def finish(task: asyncio.Task[None], within_s: float) -> None:
    """Let ``task`` end on its own for ``within_s`` seconds, then cancel it."""
    await asyncio.wait([task], timeout=within_s)
    if not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.5)


class Deadline:
    """The time left of one stop: the drain, then the hand-back steps."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # Closing the probes, the loop and the interpreter come after it.
        self.at = time.monotonic() + seconds - min(EXIT_MARGIN_S, 0.1 * seconds)

    def left(self, keep: float = 0.0) -> float:
        """Seconds left, minus ``keep`` (a fraction of the whole) held back for later."""
        return max(0.0, self.at - time.monotonic() - keep * self.seconds)

    def step(self, at_most: float) -> float:
        """A bound for one step: ``at_most``, less when the deadline is closer."""
        return max(0.01, min(at_most, self.left()))
