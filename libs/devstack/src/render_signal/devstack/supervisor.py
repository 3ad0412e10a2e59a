"""``render-signal up``: Redis plus the four services as supervised children.

The supervisor starts each service the way production does (its console
script), restarts one that crashes with a capped backoff, stops everything on
Ctrl-C or SIGTERM (SIGTERM first, SIGKILL after the drain deadline), and asks
the kernel to SIGTERM the children if the supervisor itself dies, so nothing is
left behind. A child exiting with code 2 has a configuration problem that a
restart cannot fix: the supervisor prints it and stops the stack.

With ``replicas=N`` each worker (ingest, offload, notify) runs N times:
children ``offload``, ``offload-1``, ... with ``RENDER_SIGNAL_REPLICA`` 0, 1, ...
(so distinct instance names, ``<host>-<index>``) and a metrics port each
(:func:`plan_children`). The gateway stays one process: it holds no work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from render_signal.devstack.childprocess import die_with_parent

__all__ = ["SERVICES", "WORKERS", "Child", "Supervisor", "plan_children", "service_command"]

SERVICES = ("ingest", "offload", "notify", "gateway")
#: Services that run as several replicas with ``--replicas``.
WORKERS = ("ingest", "offload", "notify")
PORT_VARS = {
    "ingest": "INGEST_METRICS_PORT",
    "offload": "OFFLOAD_METRICS_PORT",
    "notify": "NOTIFY_METRICS_PORT",
    "gateway": "PORT",
}
CONFIG_ERROR_EXIT = 2


def service_command(name: str) -> list[str]:
    """The service's console script next to this interpreter, else ``python -m``."""
    script = shutil.which(f"render-signal-{name}", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-m", f"render_signal.{name}.main"]


def plan_children(
    env: dict[str, str],
    replicas: int,
    free_port: Callable[[], int],
    services: tuple[str, ...] = SERVICES,
) -> list[tuple[str, str, dict[str, str]]]:
    """``(child name, service, environment)`` of every child to run.

    Replica 0 keeps the environment as given (its port variables included);
    replica ``i > 0`` gets ``RENDER_SIGNAL_REPLICA=i``, a free metrics port, and,
    when ``RENDER_SIGNAL_INSTANCE`` is set, that name plus ``-i``: two processes
    under one instance name would share a consumer name and a liveness key.
    """
    plan: list[tuple[str, str, dict[str, str]]] = []
    for service in services:
        count = max(1, replicas) if service in WORKERS else 1
        for index in range(count):
            child_env = dict(env)
            if count > 1:
                child_env["RENDER_SIGNAL_REPLICA"] = str(index)
                if env.get("RENDER_SIGNAL_INSTANCE"):
                    child_env["RENDER_SIGNAL_INSTANCE"] = f"{env['RENDER_SIGNAL_INSTANCE']}-{index}"
            if index > 0:
                child_env[PORT_VARS[service]] = str(free_port())
            plan.append((service if index == 0 else f"{service}-{index}", service, child_env))
    return plan


class Child:
    """One supervised service process (``name`` is ``offload-1`` for a second replica)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], service: str | None = None
    ) -> None:
        self.name = name
        self.service = service or name
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.backoff_s = 1.0
        self.next_start = 0.0
        self.started_at = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own console scripts
            self.argv, env=self.env, preexec_fn=die_with_parent, start_new_session=True
        )
        self.started_at = time.monotonic()

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class Supervisor:
    """Runs the children until asked to stop."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        services: tuple[str, ...] = SERVICES,
        say: Callable[[str], None] = print,
        drain_timeout_s: float = 25.0,
        replicas: int = 1,
        free_port: Callable[[], int] | None = None,
    ) -> None:
        if replicas > 1 and free_port is None:
            raise ValueError("replicas > 1 needs free_port for their metrics ports")
        plan = plan_children(env, replicas, free_port or (lambda: 0), services)
        self.children = [
            Child(name, service_command(service), child_env, service)
            for name, service, child_env in plan
        ]
        self.say = say
        self.drain_timeout_s = drain_timeout_s
        self.stopping = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.say(f"supervisor: {signal.Signals(signum).name} received, stopping the stack")
        self.stopping = True

    def run(self, on_started: Callable[[], None] | None = None) -> int:
        """Start all children and supervise until stopped. Returns the exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for child in self.children:
            child.start()
        if on_started is not None:
            on_started()
        exit_code = 0
        while not self.stopping:
            for child in self.children:
                code = child.poll()
                if code is None:
                    if time.monotonic() - child.started_at > 60:
                        child.backoff_s = 1.0  # stable again: reset the backoff
                    continue
                if self.stopping:
                    break
                if code == CONFIG_ERROR_EXIT:
                    self.say(f"supervisor: {child.name} refused its configuration (see above)")
                    self.stopping = True
                    exit_code = CONFIG_ERROR_EXIT
                    break
                if child.next_start == 0.0:
                    child.next_start = time.monotonic() + child.backoff_s
                    self.say(
                        f"supervisor: {child.name} exited with code {code};"
                        f" restarting in {child.backoff_s:.0f}s"
                    )
                elif time.monotonic() >= child.next_start:
                    child.restarts += 1
                    child.backoff_s = min(child.backoff_s * 2, 30.0)
                    child.next_start = 0.0
                    child.start()
            time.sleep(0.2)
        self.stop_all()
        return exit_code

    def stop_all(self) -> None:
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + self.drain_timeout_s
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"supervisor: {child.name} did not stop in time; killing it")
                child.kill()
                child.process.wait(timeout=5)

    def state(self) -> list[dict[str, object]]:
        return [
            {
                "service": c.service,
                "child": c.name,
                "replica": int(c.env.get("RENDER_SIGNAL_REPLICA", "0")),
                "pid": c.process.pid if c.process else None,
                "restarts": c.restarts,
            }
            for c in self.children
        ]


def write_state(path: Path, data: dict[str, object]) -> None:
    """Where ``render-signal status`` finds the stack started by ``up``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
