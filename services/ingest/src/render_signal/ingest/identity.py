"""Email identity for parsed emails; the id rules themselves are in ``common.identity``."""

from __future__ import annotations

import datetime as dt
import email.utils

from render_signal.common.identity import (
    gmail_email_id,
    legacy_email_id,
    message_id_email_id,
    normalise_message_id,
    original_gmail_email_id,
    original_imap_email_id,
)
from render_signal.ingest.message import ParsedEmail

__all__ = ["email_date", "email_id", "original_id"]


def email_id(parsed: ParsedEmail, source: str, gmail: dict[str, str] | None = None) -> str:
    """The id for ``parsed`` coming from ``source``."""
    if source == "gmail_push":
        return gmail_email_id(gmail or {})
    if normalise_message_id(parsed.message_id):
        return message_id_email_id(parsed.message_id)
    return legacy_email_id(parsed.subject, parsed.sender_email, parsed.date)


def original_id(parsed: ParsedEmail, source: str, gmail: dict[str, str] | None = None) -> str:
    """The id the original would have given this copy (Gmail ingress or IMAP formula)."""
    if source == "gmail_push":
        return original_gmail_email_id(gmail or {})
    return original_imap_email_id(parsed.message_id, parsed.subject, parsed.date)


def email_date(parsed: ParsedEmail, fallback: float) -> float:
    """The email's own date in epoch seconds: the Date header (RFC 5322) or the
    Apps Script's ISO ``date``; ``fallback`` (the arrival time) when neither parses."""
    value = parsed.date.strip()
    if not value:
        return fallback
    when: dt.datetime | None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
    if when is None:
        return fallback
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return fallback
