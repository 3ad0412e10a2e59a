"""Processing prefs and rule switches, applied by notify end to end (issue 11).

Each test sets the field through the config store (as the gateway does) and
watches what notify then does to a real HTTP receiver.
"""

from __future__ import annotations

import time

from notify_harness import Factory, make_event, paris
from render_signal.devstack.receiver import Receiver, Reply

START = paris(2026, 3, 30, 10, 0)


async def test_retry_count_bounds_the_attempts(make: Factory, rx: Receiver) -> None:
    h = make()
    await h.configure("processing_prefs", {"retry_count": 1})
    rx.answer = Reply(503)
    await h.emit(make_event())
    ((_, due),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
    h.clock.set(due)
    await h.tick()
    assert len(rx.wait_for(2)) == 2  # the first attempt and one retry, no more
    [dead] = await h.dead_letters()
    assert (dead["attempts"], dead["failure_reason"]) == (2, "upstream_server_error")


async def test_retry_delay_sets_the_first_backoff(make: Factory, rx: Receiver) -> None:
    h = make()
    await h.configure("processing_prefs", {"retry_delay_sec": 40})
    rx.respond(503)
    await h.emit(make_event())
    ((_, due),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
    # Equal jitter: between half and all of the configured first delay.
    assert START + 20 <= due <= START + 40
    h.clock.set(due)
    await h.tick()
    assert [r.headers["webhook-id"] for r in rx.wait_for(2)].count(rx.ids()[0]) == 2


async def test_webhook_timeout_ends_a_silent_attempt(make: Factory, rx: Receiver) -> None:
    h = make()
    await h.configure("processing_prefs", {"webhook_timeout_sec": 1})
    rx.hold()
    started = time.monotonic()
    try:
        await h.emit(make_event())
    finally:
        rx.release()
    # The attempt gave up after its 1 s timeout (the default is 30 s): a retry is parked.
    assert time.monotonic() - started < 20
    [entry] = [e for e in await h.logs() if e["status"] == "retrying"]
    assert entry["failure_reason"] == "request_failed"
    assert "Timeout" in (entry["response_snippet"] or "")


async def test_a_disabled_rule_routes_nothing(make: Factory, rx: Receiver) -> None:
    h = make()
    rule = {
        "id": "lot",
        "conditions": [{"field": "subject", "operator": "contains", "value": "Lot"}],
        "actions": {"webhook_url": rx.url_for("/rule"), "stop_processing": True},
    }
    await h.configure("routing_rules", {"rules": [{**rule, "enabled": False}]})
    await h.emit(make_event(subject="Lot 4"))
    assert [r.path for r in rx.wait_for(1)] == ["/hook"]
    await h.configure("routing_rules", {"rules": [rule]})
    await h.emit(make_event(subject="Lot 5"))
    assert [r.path for r in rx.wait_for(2)] == ["/hook", "/rule"]
