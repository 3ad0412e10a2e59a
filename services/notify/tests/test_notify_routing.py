"""(6) payload fields; routing rules; switch/absence deferral; Make watcher; log reading."""

from __future__ import annotations

import json
import time

import msgspec
import pytest
from notify_harness import Factory, make_event, paris
from render_signal.common.configrules import RuleCondition
from render_signal.devstack.receiver import Receiver
from render_signal.notify.makewatcher import MakeWatcher
from render_signal.notify.rules import condition_matches
from render_signal.notify.window import DESABO

MONDAY_10H = paris(2026, 3, 30, 10, 0)
START = MONDAY_10H  # the harness clock's default start (conftest `make`)


COMMON_FIELDS = {
    "microsoft_graph_email_id": str,
    "subject": str,
    "receivedDateTime": str,
    "sender_address": str,
    "sender_email": str,
    "bodyPreview": str,
    "email_content": str,
    "source": str,
}


@pytest.mark.parametrize("kind", ["recadrage", "desabo", "plain"])
async def test_payload_fields_and_types(make: Factory, rx: Receiver, kind: str) -> None:
    h = make(start=paris(2026, 3, 30, 7, 0))  # before the window: DESABO bypasses it
    await h.configure(
        "webhook_config", {"webhook_time_start": "08h00", "webhook_time_end": "17h00"}
    )
    if kind == "recadrage":
        event = make_event(source="imap")
    elif kind == "desabo":
        event = make_event(
            source="imap",
            subject="Désabonnement",
            detector=DESABO,
            delivery_time=None,
            links=(),
            body_text="journée aux tarifs habituels ? désabonnement",
        )
    else:
        event = make_event(
            source="imap", subject="Bonjour", detector=None, delivery_time=None, links=()
        )
    await h.emit(event)
    if kind != "desabo":  # outside the window: deferred until 08:00
        assert rx.requests == []
        h.clock.set(paris(2026, 3, 30, 8, 0))
        await h.tick()
    [request] = rx.wait_for(1)
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    for name, kind_type in COMMON_FIELDS.items():
        assert isinstance(body[name], kind_type), name
    assert body["microsoft_graph_email_id"] == event.email_id
    # The original's IMAP body: text parts, a newline, HTML parts (Gmail: the HTML alone).
    content = event.body_text + "\n" + event.body_html
    assert body["bodyPreview"] == content[:200]
    assert len(body["bodyPreview"]) <= 200
    assert body["email_content"] == content
    assert body["webhooks_time_end"] == "17:00"  # stored normalised (the [L] dashboard's form)
    if kind == "recadrage":
        assert body["detector"] == "recadrage"
        assert body["delivery_time"] == "11h30"
        assert body["webhooks_time_start"] == "maintenant"
        [link] = body["delivery_links"]
        assert set(link) == {"provider", "raw_url", "direct_url", "r2_url", "original_filename"}
        assert all(isinstance(v, str) for v in link.values())
    elif kind == "desabo":
        assert body["detector"] == DESABO
        assert body["webhooks_time_start"] == "08:00"  # early non-urgent DESABO: configured start
        assert "delivery_time" not in body
        assert "delivery_links" not in body
    else:
        assert "detector" not in body
        assert "delivery_links" not in body
        assert body["webhooks_time_start"] == "maintenant"


def _rule(rid: str, url: str, conditions: list[dict[str, object]], **actions: object) -> dict:
    return {
        "id": rid,
        "name": rid,
        "conditions": conditions,
        "actions": {"webhook_url": url, **actions},
    }


async def test_routing_first_match_and_stop_processing(make: Factory, rx: Receiver) -> None:
    h = make()
    await h.configure(
        "routing_rules",
        {
            "rules": [
                _rule(
                    "never",
                    rx.url_for("/never"),
                    [{"field": "subject", "operator": "equals", "value": "nope"}],
                ),
                _rule(
                    "lot",
                    rx.url_for("/lot"),
                    [
                        {"field": "subject", "operator": "contains", "value": "RECADRAGE"},
                        {"field": "provider", "operator": "equals", "value": "dropbox"},
                    ],
                    stop_processing=True,
                ),
                _rule(
                    "second",
                    rx.url_for("/second"),
                    [{"field": "detector", "operator": "regex", "value": "^recad"}],
                ),
            ]
        },
    )
    await h.emit(make_event())
    [request] = rx.wait_for(1)
    assert request.path == "/lot"  # first match wins, default skipped (stop_processing)
    # Without stop_processing the default is also sent; the same URL is never sent twice.
    await h.configure(
        "routing_rules",
        {
            "rules": [
                _rule(
                    "a",
                    rx.url_for("/rule"),
                    [{"field": "sender", "operator": "contains", "value": "media-solution"}],
                ),
            ]
        },
    )
    await h.emit(make_event())
    assert sorted(r.path for r in rx.wait_for(3)[1:]) == ["/hook", "/rule"]
    await h.configure(
        "routing_rules",
        {
            "rules": [
                _rule(
                    "same",
                    rx.url,
                    [{"field": "body", "operator": "contains", "value": "bonjour"}],
                    priority="high",
                ),
            ]
        },
    )
    await h.emit(make_event())
    rx.wait_for(4)
    await h.tick()
    assert len(rx.requests) == 4
    assert json.loads(rx.requests[3].body)["routing_rule"] == {
        "id": None,
        "name": None,
        "priority": "high",
    }


async def test_placeholder_stored_url_falls_back_to_env(make: Factory, rx: Receiver) -> None:
    h = make()
    # The API refuses it; a document written by an older version could still hold one.
    await h.store_unvalidated("webhook_config", {"webhook_url": "https://example.com/hook"})
    await h.emit(make_event())
    assert rx.wait_for(1)[0].path == "/hook"


def cond(**fields: object) -> RuleCondition:
    return msgspec.convert(fields, RuleCondition)


def test_regex_conditions_are_re2_safe() -> None:
    event = make_event(body_text="a" * 100_000 + "!")
    started = time.perf_counter()
    assert not condition_matches(cond(field="body", operator="regex", value="(a+)+$"), event)
    # Not a performance bound: backtracking regex engines need far longer than any
    # scheduler stall for this input (exponential in its length); re2 is linear.
    assert time.perf_counter() - started < 10
    assert condition_matches(cond(field="body", operator="regex", value="(a+)+!$"), event)
    assert condition_matches(
        cond(field="subject", operator="regex", value="lot \\d+"), make_event()
    )
    assert not condition_matches(
        cond(field="subject", operator="regex", value="lot \\d+", case_sensitive=True),
        make_event(),
    )


async def test_sending_switch_and_absence_defer_then_deliver(make: Factory, rx: Receiver) -> None:
    h = make()
    await h.configure("webhook_config", {"webhook_sending_enabled": False})
    event = make_event(detector=DESABO, links=())
    await h.emit(event)
    assert rx.requests == []
    h.clock.advance(3600)
    await h.tick()
    assert rx.requests == []  # still off: re-parked
    await h.configure(
        "webhook_config",
        {
            "webhook_sending_enabled": True,
            "absence_pause_enabled": True,
            "absence_pause_days": ["Tuesday"],
        },
    )
    h.clock.set(paris(2026, 3, 31, 0, 5))  # Tuesday in Paris: absence, DESABO included
    await h.tick()
    assert rx.requests == []
    ((_, score),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
    assert score == paris(2026, 4, 1, 0, 0)  # Wednesday 00:00 Paris
    h.clock.set(score)
    await h.tick()
    assert len(rx.wait_for(1)) == 1
    logs = await h.logs()
    assert [e["status"] for e in logs] == ["success", "deferred"]


async def test_drop_policy_logs_skipped(make: Factory, rx: Receiver) -> None:
    h = make(start=paris(2026, 3, 30, 20, 0))
    await h.configure(
        "webhook_config",
        {
            "webhook_time_start": "09:00",
            "webhook_time_end": "18:00",
            "outside_window_policy": "drop",
        },
    )
    await h.emit(make_event())
    h.clock.advance(86400)
    await h.tick()
    assert rx.requests == []
    [entry] = await h.logs(7)
    assert entry["status"] == "skipped"
    assert entry["failure_reason"] == "outside_window"


async def test_no_target_waits_until_one_is_configured(make: Factory, rx: Receiver) -> None:
    h = make(WEBHOOK_URL="")
    await h.emit(make_event())
    [entry] = await h.logs(7)
    assert entry["failure_reason"] == "no_target"
    await h.configure("webhook_config", {"webhook_url": rx.url_for("/late")})
    h.clock.advance(60)
    await h.tick()
    assert rx.wait_for(1)[0].path == "/late"


async def test_make_watcher_starts_and_stops_on_changes(make: Factory, rx: Receiver) -> None:
    h = make(
        MAKECOM_API_KEY="make-key-123", MAKE_API_BASE_URL=rx.base_url, MAKE_SCENARIO_IDS="111,222"
    )
    watcher = MakeWatcher(h.settings, h.watcher, h.clock)
    try:
        assert await watcher.tick() == {"111": True, "222": True}
        assert [(r.method, r.path) for r in rx.requests] == [
            ("POST", "/api/v2/scenarios/111/start"),
            ("POST", "/api/v2/scenarios/222/start"),
        ]
        assert rx.requests[0].headers["authorization"] == "Token make-key-123"
        assert await watcher.tick() is None  # unchanged: no call
        await h.configure("webhook_config", {"webhook_sending_enabled": False})
        await watcher.tick()
        assert [r.path for r in rx.requests[2:]] == [
            "/api/v2/scenarios/111/stop",
            "/api/v2/scenarios/222/stop",
        ]
        await h.configure(
            "webhook_config",
            {
                "absence_pause_enabled": True,
                "absence_pause_days": ["monday"],
                "webhook_sending_enabled": True,
            },
        )
        assert await watcher.tick() is None  # still off (absence day)
        await h.configure("make_config", {"scenario_ids": ["333"]})
        h.clock.set(paris(2026, 3, 31, 0, 1))  # absence over
        await watcher.tick()
        assert rx.requests[-1].path == "/api/v2/scenarios/333/start"
        assert len(rx.requests) == 5
    finally:
        await watcher.client.aclose()
