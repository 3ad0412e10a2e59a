"""The no-loss checker itself: each verdict it gives can be given (no components)."""

from __future__ import annotations

import json

from render_signal.devstack.receiver import Headers, Recorded

from .harness.mail import Sent
from .harness.oracle import check


def delivery(marker: str, content: str, webhook_id: str, at: float) -> Recorded:
    payload = {"subject": f"Lot 42 [{marker}]", "email_content": content}
    return Recorded(
        "POST",
        "/hook",
        Headers([("webhook-id", webhook_id)]),
        json.dumps(payload).encode(),
        at=at,
        status=200,
    )


def test_lost_and_content_less_deliveries_are_reported() -> None:
    sent = [Sent(f"E2E-ab-{n}", "http", 1.0, 1.1, 1) for n in range(3)]
    deliveries = [
        delivery("E2E-ab-0", "Dropbox : https://x/Rapport-E2E-ab-0.zip", "msg_0", 2.0),
        delivery("E2E-ab-1", "\n", "msg_1", 2.0),  # the bodies lost on the way
    ]
    report = check(sent, deliveries, [])
    assert report.delivered == 2
    assert report.lost == ["E2E-ab-2"]
    assert report.without_content == ["E2E-ab-1"]
    assert any("without the email's text: 1" in line for line in report.lines())
