"""A service whose Redis is already gone still stops on SIGTERM within its drain timeout.

Seen once: ingest ignored SIGTERM for 30 s after Redis stopped, so a deploy or
``docker compose down`` during a Redis outage hung until the engine's SIGKILL.
Every service runs as its own process (IMAP watcher included, Worker not
needed), Redis is killed, each worker is seen to notice (``/ready`` fails on its
Redis ping), then every service gets SIGTERM at the same moment.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.pytest_plugin import require_component

from .harness.mail import make_email
from .harness.pipeline import Pipeline, missing_components
from .harness.processes import http_ok

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

        started = time.monotonic()
        procs = {}
        for key, service in pipeline.services.items():
            assert service.process is not None
            procs[key] = service.process
            service.process.terminate()
        took: dict[str, float] = {}
        give_up = started + BOUND_S + 10
        while len(took) < len(procs) and time.monotonic() < give_up:
            for key, proc in procs.items():
                if key not in took and proc.poll() is not None:
                    took[key] = round(time.monotonic() - started, 2)
            time.sleep(0.02)  # polling child exit status; the bound is checked below
    finally:
        if outage == "frozen" and redis.poll() is None:
            redis.send_signal(signal.SIGCONT)
    print(f"redis {outage}: SIGTERM to exit, seconds by service: {took} (drain {DRAIN_S}s)")
    late = {k: took.get(k) for k in procs if took.get(k) is None or took[k] > BOUND_S}
    assert not late, "\n".join(
        f"{k} took {t}s (bound {BOUND_S}s):\n{pipeline.services[k].tail()}" for k, t in late.items()
    )
    # A stop asked for is a clean exit, even with Redis gone. uvicorn (the gateway)
    # re-raises the SIGTERM it handled once it has shut down gracefully.
    clean = {
        k: p.returncode in (0, -signal.SIGTERM if k == "gateway" else 0) for k, p in procs.items()
    }
    assert all(clean.values()), {
        k: pipeline.services[k].tail() for k, ok in clean.items() if not ok
    }
