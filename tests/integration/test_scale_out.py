"""Horizontal scale (issue 17): two replicas of every worker, killed, slow, drained.

``test_two_replicas_each_survive_random_sigkills`` (acceptance 1):

The whole pipeline with two replicas each of ingest, offload and notify
(separate processes, distinct instance names, the IMAP lock with its default
300 s TTL). 200 emails go in, alternately over IMAP APPEND and HTTP ingress,
at a constant rate; the providers take a second per file and the receiver
half a second per webhook, so every replica always has work in flight;
meanwhile replicas are SIGKILLed at random moments:
each worker once *not restarted* (ingest: the replica holding the IMAP lock)
and twice *restarted at once under a new instance name*, as a rescheduled pod.

Checked: every email delivered; no email under two webhook-ids (a crash may
resend under the same id, which the receiver dedups); every dead instance's
work (pending entries, notify leases, the IMAP lock) taken over within 15 s;
the worst delay between a kill and the delivery of an email that was in
flight at that kill under 20 s (both printed). Replay with ``--scale-seed``.

``test_slow_but_alive_handlers_are_neither_taken_over_nor_duplicated``
(acceptance 2): a 60 s Worker call and a 40 s webhook, each done once.

``test_sigterm_of_a_replica_hands_its_work_back_at_once`` (scale-down drains).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from render_signal.common.keys import Keys, consumer_name
from render_signal.devstack.polling import wait_until

from .harness.fakes import marker_of
from .harness.mail import Sent, make_email
from .harness.oracle import Fault, check
from .harness.pipeline import Pipeline
from .harness.replicas import (
    KillLog,
    delays_after_kills,
    held_by,
    lock_holder_key,
    worker_kill_plan,
)
from .harness.window import open_window

pytestmark = pytest.mark.integration

EMAILS = 200
RATE_PER_S = 4.0
FILE_S = 1.0  # each provider download (two per email, through the Worker)
WEBHOOK_S = 0.5  # each webhook answer
TAKEOVER_BOUND_S = 15.0  # issue 17: a dead replica's work taken over within 15 s
DELAY_BOUND_S = 20.0  # issue 17: worst delivery delay after a kill


def _inject(pipeline: Pipeline, markers: list[str], out: list[Sent], errors: list[str]) -> None:
    start = time.monotonic()
    try:
        for index, marker in enumerate(markers):
            pause = start + index / RATE_PER_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # constant arrival rate (load generator pacing)
            message = make_email(marker)
            if index % 2 == 0:
                out.append(pipeline.appender.append(marker, message, deadline_s=60))
            else:
                out.append(pipeline.ingress.post(marker, message, deadline_s=60))
    except Exception as exc:
        errors.append(repr(exc))


def test_two_replicas_each_survive_random_sigkills(
    pipeline_factory: Callable[..., Pipeline], request: pytest.FixtureRequest
) -> None:
    seed = request.config.getoption("--scale-seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    rng = random.Random(seed)
    pipeline = pipeline_factory(
        replicas=2,
        extra_env={
            # The lock's own TTL (300 s) must not be what frees it: only liveness may.
            "POLLER_LOCK_TTL_SECONDS": "300",
            # Enough Worker calls in flight per replica for the slow provider.
            "R2_FETCH_CONCURRENCY": "16",
        },
    )
    pipeline.files.slow("/", FILE_S)
    pipeline.receiver.delay_s = WEBHOOK_S
    start, end = open_window(pipeline.timezone)
    pipeline.put_config("webhook_config", {"webhook_time_start": start, "webhook_time_end": end})
    markers = [f"E2E-{seed:x}-{i}" for i in range(EMAILS)]
    sent: list[Sent] = []
    errors: list[str] = []
    injector = threading.Thread(target=_inject, args=(pipeline, markers, sent, errors))
    duration_s = EMAILS / RATE_PER_S
    plan = worker_kill_plan(rng)
    kills = KillLog(pipeline)
    print(f"\nscale-out: seed={seed} emails={EMAILS} at {RATE_PER_S}/s, kills {plan}")

    started = time.monotonic()
    injector.start()
    # Kills spread over the injection, leaving its last tenth without one.
    slot = duration_s * 0.85 / len(plan)
    for index, (service, mode) in enumerate(plan):
        due = started + duration_s * 0.05 + slot * index + rng.uniform(0, slot * 0.5)
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # the seeded kill schedule
        kills.kill_random(rng, service, mode)
    injector.join(duration_s + 120)
    assert not injector.is_alive() and not errors, errors
    assert len(sent) == EMAILS

    found = pipeline.receiver.wait_for_markers(set(markers), 120)
    kills.join(90)
    delivered_at = {marker: record.at for marker, record in found.items()}
    delays = delays_after_kills(sent, delivered_at, kills.kills)
    latencies = sorted(delivered_at[s.marker] - s.at for s in sent)
    crashes = [Fault(f"sigkill:{k.service}", k.at) for k in kills.kills]
    report = check(sent, pipeline.receiver.requests, crashes)
    for kill in kills.kills:
        print(f"scale-out: kill {kill.describe()}")
    for line in report.lines():
        print(f"scale-out: {line}")
    worst = delays[0] if delays else (0.0, "-", "-")
    print(
        f"scale-out: worst takeover after a SIGKILL {kills.worst_takeover_s:.1f}s"
        f" (bound {TAKEOVER_BOUND_S:.0f}s); worst delivery delay after a kill"
        f" {worst[0]:.1f}s ({worst[1]} after killing {worst[2]}; bound {DELAY_BOUND_S:.0f}s,"
        f" {len(delays)} email/kill pairs); latency p50 {latencies[len(latencies) // 2]:.2f}s"
        f" max {latencies[-1]:.1f}s; run {time.monotonic() - started:.0f}s"
    )

    assert report.lost == [], report.lost[:20]
    assert report.split_ids == [], "an email went out under two webhook-ids"
    assert report.unexpected == []
    assert report.unexplained_duplicates == [], "a resend without a crash before it"
    assert report.without_content == [], "a delivery without the email's text"
    assert len(kills.kills) == len(plan)
    assert {k.mode for k in kills.kills} == {"gone", "renamed"}
    assert any(k.held.get("lock") for k in kills.kills), "the IMAP lock holder was killed"
    held = [k for k in kills.kills if k.held]
    assert len(held) >= 3, "kills that left work behind: the takeover was exercised"
    assert kills.worst_takeover_s <= TAKEOVER_BOUND_S, [k.describe() for k in kills.kills]
    assert delays, "emails were in flight at the kills"
    assert worst[0] < DELAY_BOUND_S, delays[:5]

    def settled() -> dict[str, int]:
        client = pipeline.sync_redis()
        try:
            leases = int(client.hlen(Keys(pipeline.key_prefix).notify_leases))
        finally:
            client.close()
        return {**pipeline.pending_and_dlq(), "leases": leases}

    # The last webhooks are answered just before their entries are acked.
    wait_until(lambda: not any(settled().values()), 30, lambda: f"nothing held: {settled()}")


SLOW_S = 60.0  # issue 17: a Worker call taking 60 s


def test_slow_but_alive_handlers_are_neither_taken_over_nor_duplicated(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """A Dropbox folder copy that takes 60 s in the Worker, and a receiver that
    answers one webhook after 40 s: the replicas doing them stay alive (their
    liveness key renewed meanwhile), so the other replicas, sweeping every second
    for dead holders, take neither over. Emails sent meanwhile flow past them."""
    pipeline = pipeline_factory(
        replicas=2,
        imap=False,
        extra_env={"R2_FETCH_TIMEOUT_DROPBOX_SCL_FO": "90", "WEBHOOK_TIMEOUT_SECONDS": "60"},
    )
    start, end = open_window(pipeline.timezone)
    pipeline.put_config("webhook_config", {"webhook_time_start": start, "webhook_time_end": end})
    run = f"{random.SystemRandom().randrange(16**6):x}"
    folder, receiver_slow = f"E2E-{run}-0", f"E2E-{run}-1"
    pipeline.files.slow("/scl/fo/", SLOW_S)
    pipeline.receiver.slow_markers[receiver_slow] = 40.0
    # A Dropbox folder link (/scl/fo/): the Worker copies it in one long call.
    message = make_email(folder).replace(b"/scl/fi/", b"/scl/fo/")
    slow_sent = pipeline.ingress.post(folder, message)
    pipeline.ingress.post(receiver_slow, make_email(receiver_slow))
    wait_until(lambda: pipeline.files.count("/scl/fo/") == 1, 30, "the Worker fetching the folder")
    others = [f"E2E-{run}-{i}" for i in range(2, 8)]
    for marker in others:
        pipeline.ingress.post(marker, make_email(marker))
    quick = pipeline.receiver.wait_for_markers(set(others), 30)
    assert folder not in pipeline.receiver.first_at, "the folder copy cannot be done yet"

    delivered = pipeline.receiver.wait_for_markers({folder, receiver_slow}, SLOW_S + 60)
    took_s = delivered[folder].at - slow_sent.at
    requests = pipeline.receiver.requests
    per_marker = {
        m: [r.webhook_id for r in requests if m in str((r.json or {}).get("subject", ""))]
        for m in (folder, receiver_slow)
    }
    taken_over = {
        key: pipeline.metric(key, "render_signal_stream_taken_over_total")
        for name in ("offload", "notify")
        for key in (p.name for p in pipeline.replicas_of(name))
    }
    gaps = {
        key: pipeline.metric(key, "render_signal_liveness_longest_gap_seconds")
        for key in pipeline.layout
        if key != "gateway"
    }
    print(
        f"\nslow handlers: folder copy delivered {took_s:.1f}s after posting"
        f" (Worker call {SLOW_S:.0f}s); webhook answered after 40s sent"
        f" {len(per_marker[receiver_slow])} time(s); {len(others)} other emails delivered"
        f" meanwhile in {max(r.at for r in quick.values()) - slow_sent.at:.1f}s; entries taken"
        f" over {sum(taken_over.values()):.0f}; longest liveness renewal gap"
        f" {max(gaps.values()):.2f}s (TTL 8s)"
    )
    assert took_s >= SLOW_S, "the folder really took the slow path"
    assert pipeline.files.count("/scl/fo/") == 1, "the Worker was asked twice for the folder"
    assert len(per_marker[folder]) == 1, per_marker
    assert len(per_marker[receiver_slow]) == 1, "the slow webhook was sent twice"
    assert sum(taken_over.values()) == 0, taken_over
    wait_until(
        lambda: not any(pipeline.pending_and_dlq().values()),
        30,
        lambda: f"nothing pending: {pipeline.pending_and_dlq()}",
    )


def lease_holder(pipeline: Pipeline, webhook_id: str) -> str:
    """The notify instance holding the lease of ``webhook_id``."""
    client = pipeline.sync_redis()
    try:
        raw = client.hget(Keys(pipeline.key_prefix).notify_leases, webhook_id)
    finally:
        client.close()
    assert raw is not None, "the webhook being sent is leased"
    return str(raw.decode())


def test_sigterm_of_a_replica_hands_its_work_back_at_once(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """Scale-down: SIGTERM one replica of each worker while it holds work.

    The liveness TTL is 60 s here, so a live replica continuing within seconds
    of the exit can only come from the hand-back: ingest releases the IMAP lock,
    offload hands back the entries it never started, notify releases the leases
    of the sends its drain cut short, and each deletes its liveness key.
    """
    pipeline = pipeline_factory(
        replicas=2,
        extra_env={
            "LIVENESS_TTL_SECONDS": "60",
            "POLLER_LOCK_TTL_SECONDS": "300",
            "DRAIN_TIMEOUT_SECONDS": "3",
        },
    )
    start, end = open_window(pipeline.timezone)
    pipeline.put_config("webhook_config", {"webhook_time_start": start, "webhook_time_end": end})
    pipeline.files.slow("/", 2.0)  # offload: 4 emails at once per replica, 2 s each
    run = f"{random.SystemRandom().randrange(16**6):x}"
    markers = [f"E2E-{run}-{i}" for i in range(24)]
    sent = [pipeline.ingress.post(m, make_email(m)) for m in markers]
    handed_back: dict[str, float] = {}

    def gone_within(key: str, service: str, instance: str) -> None:
        exited = time.monotonic()
        wait_until(lambda: not held_by(pipeline, service, instance), 30, f"{key}'s work back")
        handed_back[key] = time.monotonic() - exited

    # offload handles 4 entries at once: a replica holding more has some not started.
    def busy_offload() -> str | None:
        for process in pipeline.replicas_of("offload"):
            held = held_by(pipeline, "offload", pipeline.instance(process.name))
            if held.get("pending", 0) > 4:
                return process.name
        return None

    key = wait_until(busy_offload, 60, "an offload replica holding over 4 entries")
    instance = pipeline.instance(key)
    assert pipeline.services[key].stop(timeout_s=30) == 0
    gone_within(key, "offload", instance)

    # notify: one webhook the receiver answers after 4.5 s (timeout 5 s), SIGTERM
    # as soon as it is sent: the 3 s drain cuts it short, its lease is handed back.
    slow = f"E2E-{run}-{len(markers)}"
    pipeline.receiver.slow_markers[slow] = 4.5
    sent.append(pipeline.ingress.post(slow, make_email(slow)))
    request = wait_until(
        lambda: next((r for r in pipeline.receiver.requests if marker_of(r) == slow), None),
        60,
        "the slow webhook sent",
    )
    holder = lease_holder(pipeline, request.webhook_id)
    key = next(p.name for p in pipeline.replicas_of("notify") if
               consumer_name("notify", pipeline.instance(p.name)) == holder)  # fmt: skip
    instance = pipeline.instance(key)
    assert pipeline.services[key].stop(timeout_s=30) == 0
    gone_within(key, "notify", instance)

    lock_key = lock_holder_key(pipeline)
    assert lock_key is not None
    imap_marker = f"E2E-{run}-{len(markers) + 1}"
    assert pipeline.services[lock_key].stop(timeout_s=30) == 0
    exited = time.monotonic()
    imap_sent = pipeline.appender.append(imap_marker, make_email(imap_marker))
    wait_until(lambda: lock_holder_key(pipeline) not in (None, lock_key), 30, "lock taken")
    handed_back[lock_key] = time.monotonic() - exited
    found = pipeline.receiver.wait_for_markers({*markers, slow, imap_marker}, 120)
    report = check([*sent, imap_sent], pipeline.receiver.requests, [])
    print(
        "\nscale-down: work continued by a live replica "
        + ", ".join(f"{k} {v:.1f}s" for k, v in handed_back.items())
        + " after the SIGTERMed replica exited (liveness TTL 60s);"
        f" IMAP email delivered {found[imap_marker].at - imap_sent.at:.1f}s after APPEND"
    )
    assert report.lost == [] and report.split_ids == [] and report.without_content == []
    assert max(handed_back.values()) < 10.0, handed_back
    logs = {k: pipeline.services[k].log_path.read_text() for k in handed_back}
    assert any("handed back at stop" in text for key, text in logs.items() if "offload" in key)
    assert any("handed back 1 in-flight job(s)" in t for key, t in logs.items() if "notify" in key)
    assert all("liveness released" in text for text in logs.values())
