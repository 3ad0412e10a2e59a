"""Whole pipeline, real processes (issue 8, acceptance 1).

An email with a Dropbox and a SwissTransfer link, APPENDed to a real Dovecot
(or POSTed to the HTTP ingress), goes through ingest, offload (the real Worker
in workerd, fetching from a local provider file server), notify, and reaches
the recording receiver with ``r2_url``s, the original's payload fields and a
valid Standard Webhooks signature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.receiver import Recorded
from standardwebhooks.webhooks import Webhook

from .harness.fakes import marker_of
from .harness.mail import Sent, make_email
from .harness.pipeline import Pipeline
from .harness.window import open_window

pytestmark = pytest.mark.integration

ORIGINAL_FIELDS = (
    "microsoft_graph_email_id",
    "subject",
    "receivedDateTime",
    "sender_address",
    "sender_email",
    "bodyPreview",
    "email_content",
    "source",
    "detector",
    "delivery_time",
    "webhooks_time_start",
    "webhooks_time_end",
    "delivery_links",
)


def _started(pipeline_factory: Callable[..., Pipeline]) -> tuple[Pipeline, str]:
    pipeline = pipeline_factory()
    start, end = open_window(pipeline.timezone)
    pipeline.put_config("webhook_config", {"webhook_time_start": start, "webhook_time_end": end})
    return pipeline, end


def _check_delivery(
    pipeline: Pipeline, delivery: Recorded, sent: Sent, message: bytes, window_end: str
) -> dict[str, Any]:
    # Signature: Standard Webhooks, verified by the reference library.
    verified = Webhook(pipeline.signing_secret).verify(delivery.body, delivery.headers)
    assert verified == json.loads(delivery.body)
    assert delivery.headers["webhook-signature"].startswith("v1,")
    assert delivery.webhook_id

    payload = delivery.json
    missing = [name for name in ORIGINAL_FIELDS if name not in payload]
    assert not missing, f"payload lacks {missing}: {sorted(payload)}"
    text = message.decode()
    assert sent.marker in payload["subject"]
    assert payload["subject"].startswith("Média Solution - Missions Recadrage - Lot 42")
    assert payload["microsoft_graph_email_id"]
    assert payload["receivedDateTime"]
    assert payload["sender_email"] == "missions@mediasolution.example.org"
    assert "mediasolution.example.org" in payload["sender_address"]
    assert payload["email_content"].strip().startswith("Bonjour")
    assert payload["bodyPreview"] == payload["email_content"][:200]
    assert payload["source"] == ("imap" if sent.channel == "imap" else "http_raw")
    assert payload["detector"] == "recadrage"
    assert "16" in str(payload["delivery_time"]) and "30" in str(payload["delivery_time"])
    assert payload["webhooks_time_start"] == "maintenant"
    assert payload["webhooks_time_end"] == window_end

    links = {link["provider"]: link for link in payload["delivery_links"]}
    assert set(links) == {"dropbox", "swisstransfer"}, payload["delivery_links"]
    stored = set(pipeline.worker_objects())
    for provider, link in links.items():
        assert link["raw_url"] in text.replace("&amp;", "&")
        assert link["direct_url"].startswith("https://")
        r2 = link.get("r2_url")
        assert r2 and r2.startswith("https://files.r2.test/"), link
        key = unquote(urlsplit(r2).path.lstrip("/"))
        assert key.startswith(f"{provider}/") and key in stored, (key, sorted(stored)[:5])
        assert link.get("original_filename"), link
    assert links["dropbox"]["original_filename"] == f"Rapport-{sent.marker}.zip"
    return payload


def test_imap_append_to_receiver(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline, window_end = _started(pipeline_factory)
    marker = f"E2E-{int(time.time()):x}-1"
    message = make_email(marker)
    sent = pipeline.appender.append(marker, message)
    delivery = pipeline.receiver.wait_for_markers({marker}, timeout_s=30)[marker]
    latency = delivery.at - sent.at
    print(
        f"e2e IMAP APPEND -> receiver: {latency * 1000:.0f} ms (webhook-id {delivery.webhook_id})"
    )
    _check_delivery(pipeline, delivery, sent, message, window_end)
    # Exactly one delivery of this email, and nothing stuck or dead-lettered.
    assert [marker_of(d) for d in pipeline.receiver.requests] == [marker]
    wait_until(
        lambda: not any(pipeline.pending_and_dlq().values()),
        10,
        lambda: f"nothing pending or dead-lettered: {pipeline.pending_and_dlq()}",
        interval_s=0.1,
    )


def test_http_ingress_to_receiver(pipeline_factory: Callable[..., Pipeline]) -> None:
    pipeline, window_end = _started(pipeline_factory)
    marker = f"E2E-{int(time.time()):x}-2"
    message = make_email(marker)
    sent = pipeline.ingress.post(marker, message)
    assert sent.attempts == 1
    delivery = pipeline.receiver.wait_for_markers({marker}, timeout_s=30)[marker]
    latency = delivery.at - sent.at
    print(f"e2e HTTP ingress -> receiver: {latency * 1000:.0f} ms")
    _check_delivery(pipeline, delivery, sent, message, window_end)
    assert [marker_of(d) for d in pipeline.receiver.requests] == [marker]
