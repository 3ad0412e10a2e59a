"""What an operator (or a script) does through the public API, shared by the console tests.

Hand an email to the HTTP ingress, wait for its state in the history, change
the webhook configuration -- the steps ``test_operator_api.py``,
``test_operator_console.py`` and ``screenshots.py`` all take.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import httpx
from render_signal.devstack.polling import wait_until

from .mail import make_email
from .pipeline import Pipeline

__all__ = ["email_in_state", "imap_login_refused", "post_email", "set_webhook", "today"]


def post_email(
    pipeline: Pipeline, *, subject_prefix: str = "", marker: str | None = None
) -> tuple[str, str]:
    """Hand one email to the HTTP ingress; returns ``(marker, email_id)``."""
    marker = marker or f"E2E-{uuid.uuid4().hex[:8]}-1"
    raw = make_email(marker)
    if subject_prefix:
        raw = raw.replace(b"Subject: ", b"Subject: " + subject_prefix.encode(), 1)
    reply = httpx.post(
        f"{pipeline.gateway_url}/api/ingress/raw",
        content=raw,
        headers={
            "Authorization": f"Bearer {pipeline.api_token}",
            "Content-Type": "message/rfc822",
        },
        timeout=15,
    )
    assert reply.status_code == 202, reply.text
    email_id = str(reply.json()["email_id"])
    assert email_id
    return marker, email_id


def email_in_state(client: httpx.Client, email_id: str, state: str, timeout_s: float = 30) -> Any:
    """The email's detail once its state is ``state`` (fails naming the state it is in)."""
    found: dict[str, Any] = {}

    def reached() -> bool:
        reply = client.get(f"/api/emails/{email_id}")
        if reply.status_code == 200:
            found.update(reply.json())
        return found.get("state") == state

    wait_until(reached, timeout_s, lambda: f"email {email_id} {state}; it is {found.get('state')}")
    return found


def set_webhook(client: httpx.Client, **changes: object) -> None:
    """POST a change of the webhook configuration, as the dashboard does."""
    reply = client.post("/api/webhooks/config", json=changes)
    assert reply.status_code == 200, reply.text


def today(pipeline: Pipeline) -> str:
    """Today's weekday name (``sunday``) in the pipeline's time zone (Absence days)."""
    return dt.datetime.now(zoneinfo.ZoneInfo(pipeline.timezone)).strftime("%A").lower()


@contextlib.contextmanager
def imap_login_refused(pipeline: Pipeline, wrong: str = "not-the-password") -> Iterator[None]:
    """Restart ingest with a wrong IMAP password; the good one (and ingest) are back after.

    After a refused login the watcher waits IMAP_RECONNECT_MAX_SECONDS (Dovecot, like
    Gmail, slows down an address that keeps failing): 60 s while refused, 1 s after.
    """
    ingest = pipeline.services["ingest"]
    good = ingest.env["EMAIL_PASSWORD"]
    ingest.env["EMAIL_PASSWORD"] = wrong
    ingest.env["IMAP_RECONNECT_MAX_SECONDS"] = "60"
    ingest.stop()
    ingest.start()
    try:
        yield
    finally:
        ingest.env["EMAIL_PASSWORD"] = good
        ingest.env["IMAP_RECONNECT_MAX_SECONDS"] = "1"
        ingest.stop()
        ingest.start()
    ingest.wait_ready(60)
