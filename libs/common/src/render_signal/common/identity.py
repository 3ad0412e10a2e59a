"""Email identity: one id per email, stable across sources and redeliveries.

The id crosses system boundaries (the webhook's ``microsoft_graph_email_id``,
the ingress reply, dedup keys), so every service computes it here:

* Any copy whose Message-ID is known -- IMAP, raw upload, or a Gmail push from
  the script in ``deploy/gmail/apps-script.js`` (it sends the header): the
  first 32 hex digits of sha256 of the normalised Message-ID (angle brackets
  and surrounding space removed, lowercased). The IMAP copy and the Gmail copy
  of one email get the same id.
* A Gmail push without Message-ID (the original's Apps Script): md5 hex of
  ``subject|sender_email|date``, exactly the original's Gmail ingress id. A raw
  email without Message-ID: md5 of ``subject|sender_email|Date header``.

A copy without Message-ID cannot carry the id of its Message-ID twin, so ingest
also matches copies on :func:`fingerprint` (normalised sender and subject) with
a date tolerance; see ``render_signal.ingest.dedup``.

The original's own ids (:func:`original_gmail_email_id`,
:func:`original_imap_email_id`) are kept for the webhook's ``legacy_email_id``.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib
import re
import unicodedata

__all__ = [
    "clean_header_value",
    "fingerprint",
    "gmail_email_id",
    "header_block_end",
    "legacy_email_id",
    "message_id_email_id",
    "normalise_message_id",
    "normalise_subject",
    "original_gmail_email_id",
    "original_imap_email_id",
    "raw_message_id",
    "sender_email_of",
]

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# Headers are read from at most this many bytes: ids never need the body.
HEADER_SCAN_BYTES = 256 * 1024
_BLANK_LINE = re.compile(rb"\n\r?\n")


def header_block_end(raw: bytes) -> int | None:
    """Offset just past the first empty line (LF or CRLF line ends), or None.

    The headers end there at the latest, so a parser given only the bytes up to
    it reads the same headers. With bare-CR line ends this finds a later empty
    line or none, which callers treat as "not cut here".
    """
    blank = _BLANK_LINE.search(raw)
    return None if blank is None else blank.end()


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


def _field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def original_gmail_email_id(fields: dict[str, str]) -> str:
    """The original's Gmail ingress id: md5 of ``subject|sender_email|date`` (raw fields).

    Its sender is the address ``parseaddr`` finds, else the whole raw value,
    lowercased: kept as is so ids match the original's for the same push.
    """
    sender_raw = _field(fields, "sender")
    try:
        address = email.utils.parseaddr(sender_raw)[1].strip()
    except (ValueError, IndexError, TypeError):
        address = ""
    sender = (address or sender_raw).strip().lower()
    return legacy_email_id(_field(fields, "subject"), sender, _field(fields, "date"))


def original_imap_email_id(message_id_header: str, subject: str, date_header: str) -> str:
    """The original's IMAP id: md5 of ``Message-ID|decoded Subject|Date`` (raw headers)."""
    data = f"{message_id_header}|{subject}|{date_header}".encode("utf-8", "replace")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def gmail_email_id(fields: dict[str, str]) -> str:
    """Id of a Gmail push: its Message-ID's when sent, else the original's Gmail id."""
    message_id = _field(fields, "message_id")
    if normalise_message_id(message_id):
        return message_id_email_id(message_id)
    return original_gmail_email_id(fields)


def normalise_subject(subject: str) -> str:
    """The subject as both paths see it: NFKC, casefolded, whitespace collapsed.

    Gmail's ``getSubject()`` and our RFC 2047 decoding agree on the characters
    but not always on folding whitespace or compatibility forms.
    """
    text = unicodedata.normalize("NFKC", clean_header_value(subject))
    return " ".join(text.casefold().split())


def fingerprint(sender_email: str, subject: str) -> str:
    """32 hex digits identifying (normalised sender address, normalised subject)."""
    data = f"{sender_email.strip().lower()}\n{normalise_subject(subject)}"
    return hashlib.sha256(data.encode("utf-8", "replace")).hexdigest()[:32]


def raw_message_id(raw: bytes) -> str:
    """The Message-ID of a raw RFC 822 email ("" when absent), from its headers only."""
    head = raw[:HEADER_SCAN_BYTES]
    # Stop at the first blank line: the header parser otherwise splits the whole
    # body into lines only to ignore them (11 % of the gateway's ingress CPU,
    # bench/results/flame-gateway-before.svg). A later cut is harmless: the
    # parser stops at the first blank line it sees itself.
    end = header_block_end(head)
    if end is not None:
        head = head[:end]
    try:
        value = _HEADER_PARSER.parsebytes(head).get("Message-ID", "")
    except (ValueError, TypeError, IndexError):
        return ""
    return clean_header_value(str(value))
