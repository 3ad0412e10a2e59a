"""Receiver semantics (issue 14, item 3): a 2xx saying ``success: false`` is a failure.

The original's PHP receiver answers 200 ``{"success": false, ...}`` when it
could not do its job (e.g. send its Gmail). For the default target (and every
target unless told otherwise) that reply is retried, then dead-lettered with
``remote_application_error``; a body that is not JSON ("Accepted") stays a
success; ``webhook_config.webhook_accept_any_2xx`` (default target) and a
rule's ``actions.accept_any_2xx`` count any 2xx as delivered.
"""

from __future__ import annotations

import pytest
from notify_harness import Factory, Harness, make_event, paris
from render_signal.common.configdocs import RoutingRules, apply_changes
from render_signal.common.errors import ConfigInvalid
from render_signal.devstack.receiver import JSON, Receiver, Reply

START = paris(2026, 3, 30, 10, 0)
APP_ERROR = Reply(200, b'{"success": false, "message": "Failed to send RECADRAGE email"}', JSON)


async def run_until_final(h: Harness, rx: Receiver) -> None:
    """Step the clock to each retry until the job is finished (bounded)."""
    while await h.service.queue.count():
        ((_, due),) = await h.redis.zrange(h.service.queue.schedule_key, 0, -1, withscores=True)
        h.clock.set(due)
        await h.tick()
        assert len(rx.requests) < 10


def lot42_rule(name: str, **actions: object) -> dict[str, object]:
    """A rule sending the harness's "Lot 42" emails to ``actions['webhook_url']`` only."""
    return {
        "name": name,
        "conditions": [{"field": "subject", "operator": "contains", "value": "Lot 42"}],
        "actions": {"stop_processing": True, **actions},
    }


async def statuses(h: Harness, email_id: str) -> list[object]:
    return [e["status"] for e in reversed(await h.logs()) if e["email_id"] == email_id]


async def test_success_false_is_retried_then_dead_lettered_with_the_reason(
    make: Factory, rx: Receiver
) -> None:
    h = make(WEBHOOK_RETRY_WINDOW_SECONDS="20")
    rx.answer = APP_ERROR
    event = make_event()
    await h.emit(event)
    await run_until_final(h, rx)
    [dead] = await h.dead_letters()
    assert dead["failure_reason"] == "remote_application_error"
    assert dead["status_code"] == 200
    assert "Failed to send RECADRAGE email" in dead["response_snippet"]
    assert dead["attempts"] == len(rx.requests) >= 2  # retried before giving up
    logged = await statuses(h, event.email_id)
    assert logged[0] == "retrying" and logged[-1] == "dead_letter"
    assert "success" not in logged


@pytest.mark.parametrize(
    "answer",
    [
        Reply(200, b"Accepted", {"Content-Type": "text/plain"}),  # Make.com
        Reply(202, b"", {}),
        Reply(200, b'{"success": true}', JSON),
        Reply(200, b'{"received": 1}', JSON),  # JSON that says nothing about success
        Reply(204, b"", {}),
    ],
    ids=["make-accepted", "202-empty", "success-true", "json-without-success", "204"],
)
async def test_a_2xx_that_does_not_say_failure_is_delivered(
    make: Factory, rx: Receiver, answer: Reply
) -> None:
    h = make()
    rx.answer = answer
    event = make_event()
    await h.emit(event)
    assert len(rx.requests) == 1
    assert await statuses(h, event.email_id) == ["success"]


async def test_accept_any_2xx_on_the_default_target_applies_live(
    make: Factory, rx: Receiver
) -> None:
    h = make()
    rx.answer = APP_ERROR
    event = make_event()
    await h.emit(event)
    assert await statuses(h, event.email_id) == ["retrying"]
    # The operator accepts any 2xx from this receiver: the queued retry follows it.
    await h.configure("webhook_config", {"webhook_accept_any_2xx": True})
    await run_until_final(h, rx)
    assert await statuses(h, event.email_id) == ["retrying", "success"]
    assert await h.dead_letters() == []


async def test_rule_targets_have_their_own_setting(make: Factory, rx: Receiver) -> None:
    h = make()
    rx.answer = APP_ERROR
    rule = lot42_rule("lot", webhook_url=f"{rx.url}/rule", accept_any_2xx=True)
    await h.configure("routing_rules", {"rules": [rule]})
    event = make_event()
    await h.emit(event)
    [request] = rx.requests
    assert request.path.endswith("/rule")
    assert await statuses(h, event.email_id) == ["success"]
    # The two receiver contracts of a rule are exclusive.
    strict = lot42_rule(
        "lot", webhook_url=f"{rx.url}/rule", accept_any_2xx=True, require_success_true=True
    )
    with pytest.raises(ConfigInvalid, match="accept_any_2xx"):
        apply_changes(RoutingRules, RoutingRules(), {"rules": [strict]})


async def test_require_success_true_keeps_the_original_strict_contract(
    make: Factory, rx: Receiver
) -> None:
    h = make()
    rx.answer = Reply(200, b"Accepted", {"Content-Type": "text/plain"})
    rule = lot42_rule("strict", webhook_url=f"{rx.url}/strict", require_success_true=True)
    await h.configure("routing_rules", {"rules": [rule]})
    await h.emit(make_event())
    [dead] = await h.dead_letters()  # no success:true: a contract mismatch, not retried
    assert dead["failure_reason"] == "remote_application_error" and dead["attempts"] == 1
