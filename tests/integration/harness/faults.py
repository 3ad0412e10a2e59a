"""Fault lanes for the whole-pipeline fault run, driven by a seeded RNG.

Each lane owns one component and works through a fixed, shuffled list of
faults spread over the injection phase, so every kind is injected a known
number of times and a seed replays the same schedule:

* services -- SIGKILL each service (``sigkill:<svc>``), plus SIGTERM restarts
  (``restart:<svc>``); the process is started again at once, as a supervisor
  (systemd, Kubernetes) would. With several replicas a random one is hit, and
  half the SIGKILLed worker replicas come back under a new instance name (a
  rescheduled pod): their work is then taken over through the liveness key;
* redis -- SIGKILL + restart (``redis_kill``) and SIGTERM + restart (``redis_restart``);
* worker -- the Worker process stopped for a while (``worker_down``);
* receiver -- answers 500 (``receiver_500``) or 429 + Retry-After (``receiver_429``);
* imap -- Dovecot stopped and started again (``imap_down``).

Lanes stop at their deadline whatever happens, and leave their component up.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable

from .oracle import Fault
from .pipeline import SERVICES, Pipeline

__all__ = ["FaultLanes"]


class FaultLanes:
    """Runs the lanes in threads for ``duration_s``; ``faults`` is the injected history."""

    def __init__(self, pipeline: Pipeline, seed: int, duration_s: float, per_kind: int = 10):
        self.pipeline = pipeline
        self.seed = seed
        self.duration_s = duration_s
        self.per_kind = per_kind
        self.faults: list[Fault] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._end = 0.0
        self.revived: dict[str, int] = {}
        self.renamed = 0  # SIGKILLed replicas started again under a new name
        self.exit_reasons: list[str] = []
        self._stop = threading.Event()

    # -- plumbing -------------------------------------------------------------------
    def _record(self, kind: str, at: float, until: float | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(kind, at, until))

    def _run_plan(self, name: str, plan: list[Callable[[random.Random], None]], rng: random.Random):
        """Execute ``plan`` spread evenly (with jitter) over the phase."""
        slot = self.duration_s / max(1, len(plan))
        start = time.monotonic()
        for index, action in enumerate(plan):
            due = start + slot * index + rng.uniform(0, slot * 0.5)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # deliberate spacing of the fault schedule
            if time.monotonic() > self._end + 60:
                self.errors.append(f"{name}: lane overran; {len(plan) - index} faults skipped")
                return
            try:
                action(rng)
            except Exception:
                self.errors.append(f"{name}: {traceback.format_exc(limit=3)}")

    def start(self) -> None:
        self._end = time.monotonic() + self.duration_s
        lanes = {
            "services": self._services_plan,
            "redis": self._redis_plan,
            "worker": self._worker_plan,
            "receiver": self._receiver_plan,
            "imap": self._imap_plan,
        }
        reviver = threading.Thread(target=self._revive_loop, name="fault-reviver", daemon=True)
        reviver.start()
        self._reviver = reviver
        for index, (name, build) in enumerate(lanes.items()):
            rng = random.Random(self.seed * 100 + index)
            plan = build(rng)
            if not plan:
                continue
            thread = threading.Thread(
                target=self._run_plan, args=(name, plan, rng), name=f"fault-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _revive_loop(self) -> None:
        """Restart services that exited by themselves (e.g. started while Redis was down)."""
        while not self._stop.wait(0.5):
            for name, service in self.pipeline.services.items():
                reason = service.revive()
                if reason is not None:
                    self.revived[name] = self.revived.get(name, 0) + 1
                    self.exit_reasons.append(f"{name}: {reason}")

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._stop.set()
        self._reviver.join(5)
        for service in self.pipeline.services.values():
            service.start()  # whatever state the lanes left: everything up for the drain
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"fault lanes still running: {alive}"

    # -- plans ------------------------------------------------------------------------
    def _services_plan(self, rng: random.Random) -> list[Callable[[random.Random], None]]:
        plan: list[Callable[[random.Random], None]] = []
        for name in SERVICES:
            plan += [self._kill(name)] * self.per_kind
            plan += [self._sigterm(name)] * max(2, self.per_kind // 3)
        rng.shuffle(plan)
        return plan

    def _kill(self, name: str) -> Callable[[random.Random], None]:
        def act(rng: random.Random) -> None:
            replicas = self.pipeline.replicas_of(name)
            service = rng.choice(replicas)
            service.kill()
            self._record(f"sigkill:{name}", time.time())
            time.sleep(rng.uniform(0.0, 0.5))  # how long the crash lasts before the restart
            if len(replicas) > 1 and rng.random() < 0.5:
                self.pipeline.rename(service.name)  # back as a new pod: a new name
                self.renamed += 1
            service.start()

        return act

    def _sigterm(self, name: str) -> Callable[[random.Random], None]:
        def act(rng: random.Random) -> None:
            service = rng.choice(self.pipeline.replicas_of(name))
            at = time.time()
            service.restart()
            self._record(f"restart:{name}", at, time.time())

        return act

    def _redis_plan(self, rng: random.Random) -> list[Callable[[random.Random], None]]:
        plan = [self._redis(True)] * self.per_kind + [self._redis(False)] * self.per_kind
        rng.shuffle(plan)
        return plan

    def _redis(self, kill: bool) -> Callable[[random.Random], None]:
        def act(rng: random.Random) -> None:
            at = time.time()
            self.pipeline.restart_redis(kill=kill, down_s=rng.uniform(0.2, 1.5))
            self._record("redis_kill" if kill else "redis_restart", at, time.time())

        return act

    def _worker_plan(self, rng: random.Random) -> list[Callable[[random.Random], None]]:
        if self.pipeline.worker is None:
            return []
        return [self._worker_down] * self.per_kind

    def _worker_down(self, rng: random.Random) -> None:
        worker = self.pipeline.worker
        assert worker is not None
        at = time.time()
        worker.stop()
        time.sleep(rng.uniform(1.0, 3.0))  # outage length
        worker.start()
        self._record("worker_down", at, time.time())

    def _receiver_plan(self, rng: random.Random) -> list[Callable[[random.Random], None]]:
        plan = [self._receiver("500")] * self.per_kind + [self._receiver("429")] * self.per_kind
        rng.shuffle(plan)
        return plan

    def _receiver(self, phase: str) -> Callable[[random.Random], None]:
        def act(rng: random.Random) -> None:
            at = time.time()
            self.pipeline.receiver.set_phase(phase)
            time.sleep(rng.uniform(1.0, 3.0))  # how long the receiver misbehaves
            self.pipeline.receiver.set_phase("ok")
            self._record(f"receiver_{phase}", at, time.time())

        return act

    def _imap_plan(self, rng: random.Random) -> list[Callable[[random.Random], None]]:
        if self.pipeline.dovecot is None:
            return []
        return [self._imap_down] * self.per_kind

    def _imap_down(self, rng: random.Random) -> None:
        dovecot = self.pipeline.dovecot
        at = time.time()
        dovecot.stop()
        time.sleep(rng.uniform(0.5, 2.0))  # outage length
        dovecot.start()
        self._record("imap_down", at, time.time())
