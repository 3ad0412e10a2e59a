"""(2) window deferral, (3) retries/dead letters/replay, (5) signature, (7) rate limit."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import json

import pytest
from notify_harness import Factory, Harness, make_event, paris
from prometheus_client import REGISTRY
from render_signal.devstack.polling import eventually
from render_signal.devstack.receiver import Receiver, Reply
from render_signal.notify.jobs import CREATED, EXISTS, FINISHED, Job, JobQueue
from render_signal.notify.targets import Target
from standardwebhooks.webhooks import Webhook

MONDAY_7H = paris(2026, 3, 30, 7, 0)
MONDAY_10H = paris(2026, 3, 30, 10, 0)  # inside WINDOW
WINDOW = {"webhook_time_start": "09:00", "webhook_time_end": "18:00"}

START = MONDAY_7H  # the harness clock's default start (conftest `make`)


async def due_of(h: Harness, webhook_id: str) -> float:
    score = await h.redis.zscore(h.service.queue.schedule_key, webhook_id)
    assert score is not None
    return float(score)


async def logs_for(h: Harness, email_id: str) -> list[dict[str, object]]:
    return [e for e in reversed(await h.logs()) if e["email_id"] == email_id]


async def test_deferred_by_window_delivered_when_it_opens_exactly_once(
    make: Factory, rx: Receiver
) -> None:
    h = make()
    await h.configure("webhook_config", WINDOW)
    event = make_event()
    await h.emit(event)
    assert rx.requests == []
    assert await h.service.queue.count() == 1
    [entry] = await logs_for(h, event.email_id)
    assert entry["status"] == "deferred"
    assert entry["failure_reason"] == "outside_window"
    ((wid, score),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
    assert score == paris(2026, 3, 30, 9, 0)
    h.clock.set(paris(2026, 3, 30, 8, 59, 59))
    assert await h.tick() == 0
    assert rx.requests == []
    h.clock.set(paris(2026, 3, 30, 9, 0))
    assert await h.tick() == 1
    [request] = rx.wait_for(1)
    body = json.loads(request.body)
    assert body["webhooks_time_start"] == "maintenant"
    assert body["webhooks_time_end"] == "18:00"
    assert request.headers["webhook-id"] == wid.decode()
    # Later ticks and a redelivered event never send it again.
    h.clock.advance(86400)
    await h.tick()
    await h.emit(event, deliveries=2)
    await h.emit(event)
    assert len(rx.requests) == 1
    assert await h.service.queue.count() == 0
    assert [e["status"] for e in await logs_for(h, event.email_id)] == ["deferred", "success"]


async def test_500_three_times_then_200_retries_with_growing_delays(
    make: Factory, rx: Receiver
) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0))
    rx.respond(500, b"<h1>oops</h1>", times=3)
    event = make_event()
    await h.emit(event)
    for expected in (2, 3, 4):
        wid = rx.requests[-1].headers["webhook-id"]
        h.clock.set(await due_of(h, wid) - 0.001)
        assert await h.tick() == 0  # never before it is due
        h.clock.set(await due_of(h, wid))
        await h.tick()
        assert len(rx.wait_for(expected)) == expected
    assert len(set(rx.ids())) == 1
    logs = await logs_for(h, event.email_id)
    assert [e["status"] for e in logs] == ["retrying"] * 3 + ["success"]
    assert [e["attempt"] for e in logs] == [1, 2, 3, 4]
    assert logs[0]["failure_reason"] == "upstream_server_error"
    assert logs[0]["status_code"] == 500
    delays = [
        dt.datetime.fromisoformat(str(e["next_attempt_at"])).timestamp()
        - dt.datetime.fromisoformat(str(e["timestamp"])).timestamp()
        for e in logs[:3]
    ]
    assert delays[0] < delays[1] < delays[2], delays
    assert await h.service.queue.count() == 0
    assert await h.redis.exists(h.service.queue.sent_key(rx.ids()[0]))


@pytest.mark.parametrize("http_date", [False, True])
async def test_429_retry_after_is_honoured(make: Factory, rx: Receiver, http_date: bool) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0))
    import time

    value = email.utils.formatdate(time.time() + 120, usegmt=True) if http_date else "120"
    rx.respond(429, b"slow down", headers={"Retry-After": value})
    event = make_event()
    await h.emit(event)
    wid = rx.wait_for(1)[0].headers["webhook-id"]
    due = await due_of(h, wid)
    assert due >= h.clock.now() + 110  # base delay is 1 s: only Retry-After explains this
    [entry] = await logs_for(h, event.email_id)
    assert entry["failure_reason"] == "rate_limited"
    assert entry["status"] == "retrying"
    h.clock.set(due)
    await h.tick()
    assert len(rx.wait_for(2)) == 2


async def test_400_dead_letters_at_once_and_replay_keeps_webhook_id(
    make: Factory, rx: Receiver
) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0))
    rx.respond(400, b'{"error": "bad field"}')
    event = make_event()
    await h.emit(event)
    first = rx.wait_for(1)[0]
    [dead] = await h.dead_letters()
    assert dead["status_code"] == 400
    assert dead["attempts"] == 1
    assert dead["failure_reason"] == "upstream_client_error"
    assert dead["response_snippet"] == '{"error": "bad field"}'
    assert dead["target"] == f"http://127.0.0.1:{rx.port}/***"
    assert json.loads(dead["payload"])["microsoft_graph_email_id"] == event.email_id
    assert await h.service.queue.count() == 0
    # A redelivered event does not resurrect a dead-lettered send.
    await h.emit(event, deliveries=2)
    assert len(rx.requests) == 1
    assert await h.replay(dead["id"])
    assert await h.dead_letters() == []
    await h.tick()
    second = rx.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert [e["status"] for e in await logs_for(h, event.email_id)] == ["dead_letter", "success"]


async def test_a_tick_reports_what_waits_and_what_was_dead_lettered(
    make: Factory, rx: Receiver
) -> None:
    """The gauges come with the tick's claim (one round trip): they must still
    count the parked job and the dead letter, as the heartbeat and /metrics show."""
    h = make(start=paris(2026, 3, 30, 10, 0))
    rx.respond(400, b"{}")
    await h.emit(make_event())  # dead-lettered at once
    window = {"webhook_time_start": "11:00", "webhook_time_end": "18:00"}
    await h.configure("webhook_config", window)
    await h.emit(make_event())  # parked until 11:00
    await h.emit(make_event())
    assert await h.tick() == 0
    assert h.scheduler.deferred == 2
    assert REGISTRY.get_sample_value("render_signal_notify_deferred_queue_size") == 2
    assert REGISTRY.get_sample_value("render_signal_notify_dead_letters") == 1
    h.clock.set(paris(2026, 3, 30, 11, 0))
    assert await h.tick() == 2
    assert h.scheduler.deferred == 0
    assert REGISTRY.get_sample_value("render_signal_notify_deferred_queue_size") == 0
    assert REGISTRY.get_sample_value("render_signal_notify_dead_letters") == 1


async def test_a_slow_receiver_call_does_not_hold_back_the_other_due_emails(
    make: Factory, rx: Receiver
) -> None:
    """At the window's opening four held emails are due, two may be sent at once,
    and the first one claimed hangs at the receiver: the other three go out
    meanwhile (a tick used to wait for each pair it claimed)."""
    h = make(NOTIFY_CONCURRENCY="2")
    await h.configure("webhook_config", WINDOW)
    for _ in range(4):
        await h.emit(make_event())
    assert rx.requests == []
    # Equal due times: claimed in webhook-id order, so this one goes first.
    first, *others = [m.decode() for m in await h.redis.zrange(h.service.queue.schedule_key, 0, -1)]
    rx.answer = lambda r: (
        Reply(200, b"{}", hold=True, hold_max_s=30) if r.webhook_id == first else Reply()
    )
    h.clock.set(paris(2026, 3, 30, 9, 0))
    tick = asyncio.create_task(h.tick())
    try:

        async def others_delivered() -> bool:
            delivered = {e["webhook_id"] for e in await h.logs() if e["status"] == "success"}
            return delivered == set(others)

        await eventually(others_delivered, 10, "the three other emails delivered")
        assert not tick.done(), "the first one was still at the receiver"
        rx.release()
        assert await asyncio.wait_for(tick, 30) == 4
    finally:
        rx.release()
        await asyncio.gather(tick, return_exceptions=True)
    assert sorted(rx.ids()) == sorted([first, *others]), "each sent once"
    assert await h.service.queue.count() == 0


async def test_410_disables_target_and_dead_letters(make: Factory, rx: Receiver) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0))
    rx.respond(410)
    await h.emit(make_event())
    await h.emit(make_event())
    assert len(rx.requests) == 1  # the second email is not sent to a gone target
    assert await h.redis.hexists(h.keys.notify_disabled_targets, rx.url)
    reasons = [d["failure_reason"] for d in await h.dead_letters()]
    assert reasons == ["target_disabled", "upstream_client_error"]


async def test_a_target_pinned_to_a_private_address_is_dead_lettered_unsent(
    make: Factory, rx: Receiver
) -> None:
    """A stored target whose name resolves to a private address (connect-time check)."""
    h = make(start=paris(2026, 3, 30, 10, 0), RENDER_SIGNAL_RESOLVE="hooks.inside.test=10.0.0.7")
    await h.configure("webhook_config", {"webhook_url": "https://hooks.inside.test/hook"})
    await h.emit(make_event())
    [dead] = await h.dead_letters()
    assert dead["failure_reason"] == "destination_refused"
    assert "10.0.0.7" in dead["response_snippet"]
    assert dead["attempts"] == 1  # refused, not retried for a day
    assert rx.count() == 0


async def test_retry_window_exhausted_dead_letters(make: Factory, rx: Receiver) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0), WEBHOOK_RETRY_WINDOW_SECONDS="3")
    rx.answer = Reply(503)
    await h.emit(make_event())
    while not await h.dead_letters():
        ((_, score),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
        h.clock.set(score)
        await h.tick()
        assert len(rx.requests) < 10
    [dead] = await h.dead_letters()
    assert dead["status_code"] == 503
    assert dead["attempts"] == len(rx.requests) >= 2


@pytest.mark.parametrize("raw_secret", [False, True])
async def test_signature_verifies_with_reference_library(
    make: Factory, rx: Receiver, raw_secret: bool
) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = key.decode() if raw_secret else "whsec_" + base64.b64encode(key).decode()
    h = make(start=paris(2026, 3, 30, 10, 0), WEBHOOK_SIGNING_SECRET=secret)
    event = make_event()
    await h.emit(event)
    request = rx.wait_for(1)[0]
    assert request.headers["webhook-signature"].startswith("v1,")
    verifier = Webhook(base64.b64encode(key).decode())
    payload = verifier.verify(request.body, request.headers)
    assert payload["microsoft_graph_email_id"] == event.email_id
    with pytest.raises(Exception, match=r"(?i)signature"):
        verifier.verify(request.body + b" ", request.headers)


async def test_rate_limit_holds_a_burst_without_losing_any(make: Factory, rx: Receiver) -> None:
    h = make(start=paris(2026, 3, 30, 10, 0))
    await h.configure("processing_prefs", {"rate_limit_per_hour": 5})
    events = [make_event() for _ in range(20)]
    for event in events:
        await h.emit(event)
    assert len(rx.requests) == 5
    assert await h.service.queue.count() == 15
    await h.tick()
    assert len(rx.requests) == 5  # still limited: nothing sent early
    for sent in (10, 15, 20):
        h.clock.advance(3600)
        await h.tick()
        assert len(rx.requests) == sent
    ids = rx.ids()
    assert len(set(ids)) == 20
    sent_emails = {json.loads(r.body)["microsoft_graph_email_id"] for r in rx.requests}
    assert sent_emails == {e.email_id for e in events}
    assert await h.service.queue.count() == 0


async def test_a_redelivered_entry_is_not_sent_again_once_sent_or_finished(
    make: Factory, rx: Receiver
) -> None:
    """The finished check inside ``JobQueue.create``: nothing written, nothing sent."""
    h = make(start=MONDAY_10H)
    event = make_event()
    await h.emit(event)
    assert len(rx.requests) == 1
    [wid] = rx.ids()
    job = Job(webhook_id=wid, event=event, target=Target(url=rx.url, target_class="custom"))
    assert await h.service.queue.create(job, 0.0) == FINISHED
    await h.emit(event, deliveries=2)
    assert len(rx.requests) == 1
    assert await h.redis.hget(h.service.queue.jobs_key, wid) is None
    await h.redis.delete(h.service.queue.sent_key(wid))
    await h.service.queue.mark_final(wid, "dead_letter")
    assert await h.service.queue.create(job, 0.0) == FINISHED
    await h.redis.delete(h.service.queue.final_key(wid))
    assert await h.service.queue.create(job, 0.0) == CREATED
    assert await h.service.queue.create(job, 0.0) == EXISTS


async def test_job_creation_survives_a_script_flush_and_leaves_no_orphan(
    make: Factory, rx: Receiver
) -> None:
    """The job record goes in by a plain HSETNX beside the creation script, in one
    MULTI (issue 16); with the scripts flushed (a Redis restart) the MULTI runs
    without the script and is run again: never a record outside the schedule."""
    h = make(start=MONDAY_10H)
    queue = h.service.queue
    event = make_event()
    job = Job(webhook_id="msg_flush", event=event, target=Target(url=rx.url, target_class="custom"))
    await h.redis.script_flush()
    assert await queue.create(job, 123.0) == CREATED
    assert await h.redis.zscore(queue.schedule_key, "msg_flush") == 123.0
    assert JobQueue.decode(await h.redis.hget(queue.jobs_key, "msg_flush")) == job
    await h.redis.script_flush()
    assert await queue.create(job, 456.0) == EXISTS
    assert await h.redis.zscore(queue.schedule_key, "msg_flush") == 123.0
    await queue.done("msg_flush")
    await queue.mark_final("msg_flush", "dead_letter")
    await h.redis.script_flush()
    assert await queue.create(job, 0.0) == FINISHED
    assert await h.redis.hget(queue.jobs_key, "msg_flush") is None
    assert await h.redis.zscore(queue.schedule_key, "msg_flush") is None
