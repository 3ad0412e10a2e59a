"""Email identity for parsed emails; the id rules themselves are in ``common.identity``."""

from __future__ import annotations

from render_signal.common.identity import (
    gmail_email_id,
    legacy_email_id,
    message_id_email_id,
    normalise_message_id,
)
from render_signal.ingest.message import ParsedEmail

__all__ = ["email_id"]


def email_id(parsed: ParsedEmail, source: str, gmail: dict[str, str] | None = None) -> str:
    """The id for ``parsed`` coming from ``source``."""
    if source == "gmail_push":
        return gmail_email_id(gmail or {})
    if normalise_message_id(parsed.message_id):
        return message_id_email_id(parsed.message_id)
    return legacy_email_id(parsed.subject, parsed.sender_email, parsed.date)
