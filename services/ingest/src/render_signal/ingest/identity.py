"""Email identity: one id per email, stable across sources and redeliveries.

* A raw email (IMAP or HTTP upload) with a Message-ID: the first 32 hex
  digits of sha256 of the normalised Message-ID (angle brackets and
  surrounding space removed, lowercased). The same email fetched twice, or
  uploaded after IMAP saw it, gets the same id.
* A Gmail push, or a raw email without Message-ID: md5 hex of
  ``subject|sender_email|date``, exactly the original's Gmail ingress id, which
  receivers saw as ``microsoft_graph_email_id``.
"""

from __future__ import annotations

import hashlib

from render_signal.ingest.headers import parse_sender
from render_signal.ingest.message import ParsedEmail

__all__ = ["email_id", "gmail_email_id", "legacy_email_id", "message_id_email_id"]


def normalise_message_id(message_id: str) -> str:
    """``<ABC@host>`` -> ``abc@host``."""
    return message_id.strip().strip("<>").strip().lower()


def message_id_email_id(message_id: str) -> str:
    """sha256-based id of a Message-ID (32 hex chars)."""
    digest = hashlib.sha256(normalise_message_id(message_id).encode("utf-8", "replace"))
    return digest.hexdigest()[:32]


def legacy_email_id(subject: str, sender_email: str, date: str) -> str:
    """The original's id: md5 hex of ``subject|sender_email|date``."""
    data = f"{subject}|{sender_email}|{date}".encode("utf-8", "replace")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def gmail_email_id(fields: dict[str, str]) -> str:
    """Id of a Gmail push from its raw fields, as the original computed it."""

    def field(name: str) -> str:
        value = fields.get(name)
        return value if isinstance(value, str) else ""

    _display, sender_email = parse_sender(field("sender"))
    return legacy_email_id(field("subject"), sender_email, field("date"))


def email_id(parsed: ParsedEmail, source: str, gmail: dict[str, str] | None = None) -> str:
    """The id for ``parsed`` coming from ``source``."""
    if source == "gmail_push":
        return gmail_email_id(gmail or {})
    if normalise_message_id(parsed.message_id):
        return message_id_email_id(parsed.message_id)
    return legacy_email_id(parsed.subject, parsed.sender_email, parsed.date)
