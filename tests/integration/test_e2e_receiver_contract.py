"""Receiver semantics through the running services (issue 14, acceptance 3).

The receiver answers 200 ``{"success": false}`` (the original's PHP receiver on
an application error): notify retries, then dead-letters the webhook with
``remote_application_error``, which the dashboard's dead-letter list shows.
The operator then ticks "accept any 2xx" for the default target through the
API and replays the dead letter: delivered.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from render_signal.devstack.polling import wait_until

from .harness.mail import make_email
from .harness.pipeline import Pipeline

pytestmark = pytest.mark.integration


def test_success_false_is_retried_dead_lettered_then_delivered_with_accept_any_2xx(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(imap=False, worker=False)
    marker = f"E2E-{secrets.token_hex(4)}-1"
    pipeline.receiver.set_phase("app_error")
    with pipeline.dashboard() as client:
        # Three attempts in all (the dashboard's "retries" preference).
        assert client.post("/api/processing_prefs", json={"retry_count": 2}).status_code == 200
        pipeline.ingress.post(marker, make_email(marker))

        def dead_letter() -> dict[str, Any] | None:
            items = client.get("/api/dead_letters").json()["dead_letters"]
            return next((i for i in items if marker in (i.get("subject") or "")), None)

        dead = wait_until(dead_letter, 60, f"the dead letter of {marker}")
        assert dead["reason"] == "remote_application_error"
        assert dead["status_code"] == 200 and dead["attempts"] == 3
        assert "Failed to send RECADRAGE email" in dead["response_snippet"]
        assert sum(1 for r in pipeline.receiver.requests if marker in r.body.decode()) == 3

        saved = client.post("/api/webhooks/config", json={"webhook_accept_any_2xx": True})
        assert saved.status_code == 200
        assert saved.json()["config"]["webhook_accept_any_2xx"] is True

        def delivered() -> bool:
            # Replayed until notify has read the new setting (it applies it live).
            logs = client.get("/api/webhook_logs").json()["logs"]
            if any(e["email_id"] == dead["email_id"] and e["status"] == "success" for e in logs):
                return True
            again = dead_letter()
            if again is not None:
                client.post(f"/api/dead_letters/{again['id']}/replay")
            return False

        wait_until(delivered, 60, f"{marker} delivered after accept_any_2xx")
