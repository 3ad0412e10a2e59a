"""The webhook body, field for field compatible with the original (§6.1).

Per source, as the original built them: ``receivedDateTime`` is the Date
header (IMAP, raw upload) or the Apps Script's ``date`` string; ``sender_address``
the raw From header or ``sender`` field; ``email_content`` the text parts, a
newline and the HTML parts (IMAP, raw) or the pushed HTML body (Gmail), and
``bodyPreview`` its first 200 characters. ``microsoft_graph_email_id`` is our
email id (one per email across paths); ``legacy_email_id`` is the id the
original would have sent (``docs/migrating.md``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from render_signal.common.events import MailOffloaded
from render_signal.notify.window import Decision

__all__ = ["build_payload", "encode_payload"]


def build_payload(
    event: MailOffloaded, decision: Decision, priority: str | None = None
) -> dict[str, Any]:
    """Original field names; optional fields absent (not null) when unknown."""
    if event.source == "gmail_push":
        content = event.body_html or event.body_text
    else:
        content = (event.body_text or "") + "\n" + (event.body_html or "")
    payload: dict[str, Any] = {
        "microsoft_graph_email_id": event.email_id,
        "subject": event.subject or "",
        "receivedDateTime": (
            event.date_header if event.date_header is not None else event.received_date
        ),
        "sender_address": event.from_header or event.sender_address,
        "sender_email": event.sender_email,
        "bodyPreview": content[:200],
        "email_content": content,
        "source": event.source,
    }
    if event.legacy_email_id:
        payload["legacy_email_id"] = event.legacy_email_id
    if event.detector:
        payload["detector"] = event.detector
    if event.delivery_time:
        payload["delivery_time"] = event.delivery_time
    if decision.time_start_field is not None:
        payload["webhooks_time_start"] = decision.time_start_field
    if decision.time_end_field is not None:
        payload["webhooks_time_end"] = decision.time_end_field
    if event.links:
        payload["delivery_links"] = [
            {
                "provider": link.provider,
                "raw_url": link.raw_url,
                "direct_url": link.direct_url,
                **({"r2_url": link.r2_url} if link.r2_url else {}),
                **({"original_filename": link.original_filename} if link.original_filename else {}),
            }
            for link in event.links
        ]
    if priority and priority != "normal":
        payload["routing_rule"] = {"id": None, "name": None, "priority": priority}
    return payload


_encoder = msgspec.json.Encoder()


def encode_payload(payload: dict[str, Any]) -> bytes:
    """UTF-8 JSON without ASCII escaping, as the original serialised it.

    The bytes are those of ``json.dumps(payload, ensure_ascii=False).encode()``
    (receivers and signatures depend on them), made by msgspec about five times
    faster on the ~50-500 KB bodies: ``format(indent=0)`` puts back json's
    ``", "`` and ``": "`` separators, and msgspec escapes strings exactly as json
    does (every code point is checked by the tests; a lone surrogate raises
    ``UnicodeEncodeError`` in both). The payload holds only str, None, lists and
    dicts (:func:`build_payload`); floats would be written differently.
    """
    return msgspec.json.format(_encoder.encode(payload), indent=0)
