"""A service whose Redis is already gone still stops on SIGTERM within its drain timeout.

Seen once: ingest ignored SIGTERM for 30 s after Redis stopped, so a deploy or
``docker compose down`` during a Redis outage hung until the engine's SIGKILL.
Every service runs as its own process (IMAP watcher included, Worker not
needed), Redis is killed, each worker is seen to notice (``/ready`` fails on its
Redis ping), then every service gets SIGTERM at the same moment.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import RedisServer

from .harness.mail import HttpIngress, make_email
from .harness.pipeline import PORT_VAR, Pipeline, missing_components
from .harness.processes import ServiceProcess, http_ok, service_command

DRAIN_S = 4.0
#: The runtime aims to exit 0.4 s before it (EXIT_MARGIN_S); half a second of
#: slack for a loaded two-core machine.
BOUND_S = DRAIN_S + 0.5
MARKER_TEXT = "E2E-0ea9e-1"  # the harness matches E2E-<hex>-<n>


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    missing = missing_components(worker=False)
    require_component(missing is None, missing or "")
    with Pipeline(
        tmp_path, worker=False, extra_env={"DRAIN_TIMEOUT_SECONDS": str(DRAIN_S)}
    ) as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_every_service_stops_on_sigterm_within_its_drain_timeout_when_redis_is_gone(
    pipeline: Pipeline, outage: str
) -> None:
    # Working first: an email goes through, so every loop is past its start-up.
    pipeline.ingress.post(MARKER_TEXT, make_email(MARKER_TEXT))
    pipeline.receiver.wait_for_markers({MARKER_TEXT}, timeout_s=30)

    redis = pipeline.redis.process
    assert redis is not None
    if outage == "killed":  # connections refused at once
        pipeline.redis.kill()
    else:  # SIGSTOP: the port still accepts, nothing ever answers (a partition)
        redis.send_signal(signal.SIGSTOP)
    try:
        for key, service in pipeline.services.items():
            if key == "gateway":
                continue  # no readiness probe on Redis; it gets the same SIGTERM below
            assert service.ready_url is not None
            url = service.ready_url
            wait_until(lambda url=url: not http_ok(url, 3.0), 20, f"{key} to see Redis gone")

        _stop_all_within_bound(pipeline.services, f"redis {outage}")
    finally:
        if outage == "frozen" and redis.poll() is None:
            redis.send_signal(signal.SIGCONT)


def _stop_all_within_bound(services: dict[str, ServiceProcess], label: str) -> None:
    """SIGTERM every service at the same moment: each exits within BOUND_S, cleanly."""
    started = time.monotonic()
    for service in services.values():
        assert service.process is not None
        service.process.terminate()
    took: dict[str, float] = {}
    give_up = started + BOUND_S + 30
    while len(took) < len(services) and time.monotonic() < give_up:
        for key, service in services.items():
            assert service.process is not None
            if key not in took and service.process.poll() is not None:
                took[key] = round(time.monotonic() - started, 2)
        time.sleep(0.02)  # polling child exit status; the bound is checked below
    print(f"{label}: SIGTERM to exit, seconds by service: {took} (drain {DRAIN_S}s)")
    late = {k: took.get(k) for k in services if took.get(k) is None or took[k] > BOUND_S}
    assert not late, "\n".join(
        f"{k} took {t}s (bound {BOUND_S}s):\n{services[k].tail()}" for k, t in late.items()
    )
    # A stop asked for is a clean exit, even with Redis gone. uvicorn (the gateway)
    # re-raises the SIGTERM it handled once it has shut down gracefully.
    codes = {k: s.process.returncode for k, s in services.items() if s.process is not None}
    expected = {k: -signal.SIGTERM if k == "gateway" else 0 for k in services}
    assert codes == expected, {
        k: services[k].tail() for k in services if codes.get(k) != expected[k]
    }


# -- Redis's host name stops resolving --------------------------------------------------
REDIS_HOST = "redis.rs-test"
#: Runs the service in a mount namespace of its own, with our /etc/hosts and
#: /etc/resolv.conf bound over the system's (for it alone).
NAMESPACED = (
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"'
)


class SilentDns:
    """A DNS server on loopback that reads every query and never answers (what
    compose's DNS did for the Redis container's name while Redis was stopped)."""

    def __init__(self) -> None:
        rng = random.Random()
        self.address = f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, 53))
        self.sock.settimeout(0.2)
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.sock.recvfrom(4096)
                self.queries += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_services_stop_on_sigterm_when_redis_host_name_stops_resolving(tmp_path: Path) -> None:
    """Seen in the compose test: with Redis stopped, its container's name no longer
    resolved and the DNS server did not answer; the workers drained in time, then
    waited for the name lookups still running (up to 20 s each) and were SIGKILLed
    at the end of the 30 s stop grace. Here each worker resolves Redis's name
    through its own /etc/hosts, Redis is killed and the name removed, and the
    lookups go to a DNS server that never answers. The gateway gets the same
    stop with ingress requests in flight, each waiting on a lookup."""
    require_component(os.geteuid() == 0, "bind mounts over /etc need root")
    require_component(shutil.which("unshare") is not None, "unshare (util-linux) missing")
    redis = RedisServer(tmp_path / "redis").start()
    dns = SilentDns()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {REDIS_HOST}\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {dns.address}\noptions timeout:5 attempts:2\n")
    token = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        {
            "RENDER_SIGNAL_ENV": "dev",
            "RENDER_SIGNAL_ENV_FILE": str(tmp_path / "absent.env"),
            "REDIS_URL": f"redis://{REDIS_HOST}:{redis.port}/0",
            "REDIS_KEY_PREFIX": "gone:",
            "LOG_FORMAT": "json",
            "DRAIN_TIMEOUT_SECONDS": str(DRAIN_S),
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "WEBHOOK_SIGNING_SECRET": "whsec_" + "A" * 44,
            "WEBHOOK_LINKS_FILE": str(tmp_path / "webhook_links.json"),
            "R2_FETCH_ENABLED": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DASHBOARD_USER": "admin",
            "DASHBOARD_PASSWORD": secrets.token_urlsafe(12),
            "PROCESS_API_TOKEN": token,
        }
    )
    services: dict[str, ServiceProcess] = {}
    try:
        for name in ("ingest", "offload", "notify", "gateway"):
            port = free_port()
            argv = ["unshare", "-m", "sh", "-c", NAMESPACED, "namespaced", str(hosts), str(resolv)]
            path = "/health" if name == "gateway" else "/ready"
            services[name] = ServiceProcess(
                name,
                {**env, PORT_VAR[name]: str(port)},
                tmp_path,
                f"http://127.0.0.1:{port}{path}",
                argv=[*argv, *service_command(name)],
            )
            services[name].start()
        for service in services.values():
            service.wait_ready(60)

        redis.kill()
        hosts.write_text("127.0.0.1 localhost\n")  # in place: the bind mounts see it
        for name, service in services.items():
            url = service.ready_url
            assert url is not None
            if name != "gateway":  # its /health does not ping Redis
                wait_until(lambda url=url: not http_ok(url, 3.0), 30, f"{name} to see Redis gone")
        # Ingress requests that wait on Redis (its name) when the stop comes.
        gateway_url = services["gateway"].ready_url
        assert gateway_url is not None
        ingress = HttpIngress(gateway_url.removesuffix("/health"), token)
        answers: list[int | str] = []
        posts = [
            threading.Thread(
                target=lambda n=n: answers.append(ingress.post_once(make_email(f"E2E-d45-{n}"))),
                daemon=True,
            )
            for n in range(3)
        ]
        for post in posts:
            post.start()
        queries_before = dns.queries
        # Lookups of the name are waiting on the silent server once it has a new query.
        wait_until(lambda: dns.queries > queries_before, 10, "the gateway to look Redis up")

        _stop_all_within_bound(services, f"Redis's name unresolvable ({dns.queries} queries)")
        # The requests in flight were answered or cut, none accepted (no Redis to queue them).
        for post in posts:
            post.join(10)
        assert len(answers) == len(posts) and 202 not in answers, answers
    finally:
        for service in services.values():
            with contextlib.suppress(Exception):
                service.kill()
        dns.close()
        redis.stop()
