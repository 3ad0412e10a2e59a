"""Email identity: one id per email, stable across sources and redeliveries.

The id crosses system boundaries (the webhook's ``microsoft_graph_email_id``,
the ingress's 202 reply, dedup keys), so every service computes it here:

* A raw email (IMAP or HTTP upload) with a Message-ID: the first 32 hex digits
  of sha256 of the normalised Message-ID (angle brackets and surrounding space
  removed, lowercased). The same email fetched twice, or uploaded after IMAP
  saw it, gets the same id.
* A Gmail push, or a raw email without Message-ID: md5 hex of
  ``subject|sender_email|date``, exactly the original's Gmail ingress id.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib

__all__ = [
    "clean_header_value",
    "gmail_email_id",
    "legacy_email_id",
    "message_id_email_id",
    "normalise_message_id",
    "raw_message_id",
    "sender_email_of",
]

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# Headers are read from at most this many bytes: ids never need the body.
HEADER_SCAN_BYTES = 256 * 1024


def clean_header_value(value: str) -> str:
    """One line, no NUL, no CR/LF (they could forge lines or headers downstream)."""
    if not value:
        return ""
    value = value.replace("\x00", "").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return " ".join(value.split()) if "  " in value else value.strip()


def sender_email_of(value: str) -> str:
    """The lowercased address in a From-style value (``Name <a@b>``), or ""."""
    try:
        _name, address = email.utils.parseaddr(clean_header_value(value))
    except (ValueError, IndexError, TypeError):
        return ""
    address = address.strip().lower()
    return address if "@" in address and " " not in address else ""


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

    return legacy_email_id(field("subject"), sender_email_of(field("sender")), field("date"))


def raw_message_id(raw: bytes) -> str:
    """The Message-ID of a raw RFC 822 email ("" when absent), from its headers only."""
    head = raw[:HEADER_SCAN_BYTES]
    try:
        value = _HEADER_PARSER.parsebytes(head).get("Message-ID", "")
    except (ValueError, TypeError, IndexError):
        return ""
    return clean_header_value(str(value))
