"""Fault run over the whole pipeline (issue 8, acceptance 2; method: reliability §1.8).

Emails go in over IMAP APPEND and HTTP ingress while fault lanes SIGKILL and
restart each service, kill and restart Redis (AOF), stop the Worker, make the
receiver answer 500 / 429, and stop Dovecot. Every worker runs as two replicas
(issue 17; ``--fault-replicas``): kills hit a random replica, and half of the
SIGKILLed ones come back under a new instance name, so a dead replica's work
is taken over through its liveness key as well as re-read by a restart under
the same name. After the drain the oracle checks: lost = 0, no unexplained
duplicate (duplicates only after a crash, reported by cause), no email under
two webhook-ids, no dead letter, nothing pending. Size with ``--fault-emails N``
(default 200), replay with ``--fault-seed S`` (printed), ``--fault-redis-fsync``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from render_signal.common.keys import Keys

from .harness.faults import FaultLanes
from .harness.mail import Sent, make_email
from .harness.oracle import check
from .harness.pipeline import SERVICES, Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FAULTS_PER_KIND = 10
DRAIN_TIMEOUT_S = 240.0


def _inject(
    pipeline: Pipeline, channel: str, markers: list[str], duration_s: float, out: list[Sent]
) -> Callable[[], None]:
    def run() -> None:
        interval = duration_s / max(1, len(markers))
        start = time.monotonic()
        for index, marker in enumerate(markers):
            pause = start + index * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # constant arrival rate (load generator pacing)
            message = make_email(marker)
            if channel == "imap":
                out.append(pipeline.appender.append(marker, message, deadline_s=120))
            else:
                out.append(pipeline.ingress.post(marker, message, deadline_s=120))

    return run


def test_fault_run(pipeline_factory: Callable[..., Pipeline], request: pytest.FixtureRequest):
    emails = int(request.config.getoption("--fault-emails"))
    seed = request.config.getoption("--fault-seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    fsync = request.config.getoption("--fault-redis-fsync")
    replicas = int(request.config.getoption("--fault-replicas"))
    duration_s = max(90.0, emails * 0.6)
    print(
        f"\nfault run: seed={seed} emails={emails} phase={duration_s:.0f}s fsync={fsync}"
        f" replicas={replicas}"
    )
    pipeline = pipeline_factory(
        redis_fsync=fsync,
        replicas=replicas,
        # Short sends; and a lease (4 x timeout + 60 s) is only the backstop for a
        # hung live replica: a dead one's leases go with its liveness key.
        extra_env={"WEBHOOK_TIMEOUT_SECONDS": "2"},
    )
    run_id = f"{seed:x}"
    markers = [f"E2E-{run_id}-{i}" for i in range(emails)]
    by_channel = {"imap": markers[0::2], "http": markers[1::2]}
    sent: dict[str, list[Sent]] = {"imap": [], "http": []}
    errors: list[str] = []

    def guarded(target: Callable[[], None], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception as exc:
                errors.append(f"{name}: {exc!r}")

        return run

    injectors = [
        threading.Thread(
            target=guarded(
                _inject(pipeline, ch, by_channel[ch], duration_s, sent[ch]), f"inject-{ch}"
            ),
            daemon=True,
        )
        for ch in ("imap", "http")
    ]
    lanes = FaultLanes(pipeline, seed, duration_s, per_kind=FAULTS_PER_KIND)
    started = time.monotonic()
    lanes.start()
    for thread in injectors:
        thread.start()
    lanes.join(duration_s + 120)
    for thread in injectors:
        thread.join(max(1.0, duration_s + 180 - (time.monotonic() - started)))
    assert not any(t.is_alive() for t in injectors), "injectors did not finish"
    assert not errors, errors
    assert not lanes.errors, lanes.errors
    injected_at = time.monotonic()

    # Everything is up again: drain.
    pipeline.receiver.set_phase("ok")
    pipeline.wait_all_ready(60)
    history = sent["imap"] + sent["http"]
    assert len(history) == emails
    try:
        pipeline.receiver.wait_for_markers(set(markers), DRAIN_TIMEOUT_S)
    except AssertionError as exc:
        print(f"drain incomplete: {exc}")
    drained_at = time.monotonic()
    counts: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = pipeline.pending_and_dlq()
        client = pipeline.sync_redis()
        try:
            counts["notify:scheduled"] = int(
                client.zcard(Keys(pipeline.key_prefix).notify_scheduled)
            )
        finally:
            client.close()
        if not any(counts.values()):
            break
        time.sleep(0.2)

    report = check(history, pipeline.receiver.requests, lanes.faults)
    print(
        f"fault run: seed={seed}; injection {injected_at - started:.0f}s,"
        f" drain {drained_at - injected_at:.0f}s"
    )
    for line in report.lines():
        print(f"fault run: {line}")
    print(f"fault run: pending/dlq after drain: {counts}")
    print(f"fault run: SIGKILLed replicas back under a new name: {lanes.renamed}")
    print(f"fault run: services that exited on their own and were restarted: {lanes.revived}")
    for reason in sorted(set(lanes.exit_reasons))[:12]:
        print(f"fault run:   {reason}")
    if report.lost:
        for service in pipeline.services.values():
            print(f"--- {service.name}\n{service.tail(15)}")

    assert report.lost == [], f"lost emails (seed {seed}): {report.lost[:20]}"
    assert report.unexpected == []
    assert report.unexplained_duplicates == [], report.unexplained_duplicates
    assert report.split_ids == [], report.split_ids
    assert report.without_content == [], report.without_content[:20]
    assert not any(counts.values()), counts
    kinds = {"redis_kill", "redis_restart", "receiver_500", "receiver_429"}
    kinds |= {f"sigkill:{name}" for name in SERVICES}
    if pipeline.worker is not None:
        kinds.add("worker_down")
    if pipeline.dovecot is not None:
        kinds.add("imap_down")
    short = {k: report.faults.get(k, 0) for k in kinds if report.faults.get(k, 0) < FAULTS_PER_KIND}
    assert not short, f"fewer than {FAULTS_PER_KIND} faults of kinds {short}"
