"""An email, read into the shape the rest of ingest works on.

Two inputs: RFC 822 bytes (IMAP, raw HTTP upload) and the Gmail Apps Script
push fields. Reading never raises on bad content (unknown charsets, broken
base64, truncated MIME); it raises :class:`UnreadableEmail` only when nothing
useful could be read at all. Work is bounded: at most ``max_parse_bytes`` of
input reach the parser, at most ``MAX_PARTS`` parts are walked, header values
are capped (see :mod:`render_signal.ingest.headers`), and the HTML and text kept
are capped before anything scans them.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
from email.message import Message

import msgspec
from render_signal.common.errors import PermanentError
from render_signal.ingest.headers import (
    BoundedPolicy,
    decode_bytes,
    decode_header_value,
    parse_sender,
    raw_header_text,
)
from render_signal.ingest.mimeparser import parse_message

__all__ = [
    "MAX_PARTS",
    "ParseLimits",
    "ParsedEmail",
    "UnreadableEmail",
    "read_gmail_push",
    "read_raw_email",
]

logger = logging.getLogger(__name__)

#: MIME parts walked per message (real notifications have fewer than 10).
MAX_PARTS = 200
#: message/rfc822 and multipart nesting followed (forwards of forwards).
MAX_DEPTH = 12
#: Lines starting with ``--`` (MIME delimiters) let through to the parser. Each
#: part and each nesting level needs one, so this bounds both before parsing
#: (CPython checks every line against every open boundary: depth x lines work).
MAX_DELIMITER_LINES = 512
#: ``multipart/`` containers let through (nesting costs depth x lines in CPython).
MAX_MULTIPARTS = 64


class UnreadableEmail(PermanentError):
    """Nothing usable could be read; the reason says why (dead-letter it)."""


class ParseLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Caps applied while reading one email."""

    max_html_bytes: int = 1024 * 1024
    max_text_bytes: int = 1024 * 1024
    max_parse_bytes: int = 10 * 1024 * 1024


class ParsedEmail(msgspec.Struct, frozen=True, kw_only=True):
    """The parsed shape shared by every source."""

    subject: str
    sender_address: str
    sender_email: str
    date: str
    received_date: str
    message_id: str
    body_text: str
    body_html: str
    truncated: bool = False
    #: From as sent, unfolded, not RFC 2047-decoded (Gmail: the raw ``sender``).
    from_header: str = ""


class _CappedText:
    """Accumulates decoded parts up to a UTF-8 byte budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.parts: list[str] = []
        self.truncated = False

    def add(self, text: str) -> None:
        if not text:
            return
        if self.used >= self.limit:
            self.truncated = True
            return
        room = self.limit - self.used
        size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        if size > room:
            text = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
            self.truncated = True
            size = room
        self.used += size
        self.parts.append(text)

    def value(self) -> str:
        return "\n".join(self.parts).replace("\x00", "")


def _first_raw(msg: Message, name: str) -> str:
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return ""


def _iso_date(raw_date: str) -> str:
    if not raw_date:
        return ""
    try:
        parsed = email.utils.parsedate_to_datetime(raw_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return raw_date
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _walk(root: Message) -> tuple[list[Message], bool]:
    """Leaf parts in document order, depth-first, bounded in count and depth."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    visited = 0
    capped = False
    while stack:
        part, depth = stack.pop()
        visited += 1
        if visited > MAX_PARTS:
            capped = True
            break
        if part.is_multipart():
            payload = part.get_payload()
            children = (
                [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
            )
            if depth >= MAX_DEPTH:
                capped = True
                continue
            stack.extend((child, depth + 1) for child in reversed(children))
        else:
            leaves.append(part)
    return leaves, capped


def _structure_cut(raw: bytes) -> int | None:
    """Offset where the MIME structure exceeds its budget, or None.

    Counted on the bytes before parsing, in linear time: delimiter lines bound
    the number of parts, ``multipart/`` declarations bound the nesting depth.
    """
    cuts: list[int] = []
    pos, count = 0, 0
    while True:
        pos = raw.find(b"\n--", pos)
        if pos < 0:
            break
        count += 1
        if count > MAX_DELIMITER_LINES:
            cuts.append(pos + 1)
            break
        pos += 3
    # Lowered bytes keep offsets (ASCII folding, as a bytes regex's IGNORECASE).
    lowered, found = raw.lower(), -1
    for _ in range(MAX_MULTIPARTS + 1):
        found = lowered.find(b"multipart/", found + 1)
        if found < 0:
            break
    else:  # one declaration more than the budget
        cuts.append(raw.rfind(b"\n", 0, found) + 1)
    return min(cuts) if cuts else None


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return decode_bytes(data, part.get_content_charset())


def read_raw_email(raw: bytes, limits: ParseLimits) -> ParsedEmail:
    """Parse RFC 822 bytes. Raises :class:`UnreadableEmail` when nothing is readable."""
    if not raw or not raw.strip():
        raise UnreadableEmail("empty raw message")
    truncated = False
    if len(raw) > limits.max_parse_bytes:
        raw = raw[: limits.max_parse_bytes]
        truncated = True
        logger.warning(
            "PARSE: message cut to %d bytes before parsing (MAX_PARSE_BYTES)",
            limits.max_parse_bytes,
        )
    cut = _structure_cut(raw)
    if cut is not None:
        raw = raw[:cut]
        truncated = True
        logger.warning(
            "PARSE: message cut at %d MIME delimiters / %d multiparts",
            MAX_DELIMITER_LINES,
            MAX_MULTIPARTS,
        )
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"")
    try:
        msg = parse_message(raw, BoundedPolicy())
    except RecursionError as exc:
        raise UnreadableEmail("MIME structure nested too deeply") from exc
    del raw
    subject = decode_header_value(_first_raw(msg, "subject"))
    sender_address, sender_email = parse_sender(decode_header_value(_first_raw(msg, "from")))
    # Raw 8-bit header bytes arrive as surrogates: raw_header_text makes them text.
    date = raw_header_text(_first_raw(msg, "date"))
    message_id = raw_header_text(_first_raw(msg, "message-id"))
    from_header = raw_header_text(_first_raw(msg, "from"))

    text = _CappedText(limits.max_text_bytes)
    html = _CappedText(limits.max_html_bytes)
    try:
        leaves, capped = _walk(msg)
    except RecursionError as exc:
        raise UnreadableEmail("MIME structure nested too deeply") from exc
    if capped:
        truncated = True
        logger.warning("PARSE: MIME walk stopped at %d parts / depth %d", MAX_PARTS, MAX_DEPTH)
    for part in leaves:
        if part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        subtype = part.get_content_subtype()
        if subtype == "html":
            if html.truncated:
                continue
            html.add(_part_text(part))
        elif subtype == "plain" or part is msg:
            if text.truncated:
                continue
            text.add(_part_text(part))
    if html.truncated:
        truncated = True
        logger.warning(
            "PARSE: HTML content truncated (exceeded %d bytes limit)", limits.max_html_bytes
        )
    if text.truncated:
        truncated = True
        logger.warning("PARSE: text content truncated (exceeded %d bytes)", limits.max_text_bytes)
    body_text, body_html = text.value(), html.value()
    if not (subject or sender_email or body_text.strip() or body_html.strip() or message_id):
        raise UnreadableEmail("no headers or body could be read")
    return ParsedEmail(
        subject=subject,
        sender_address=sender_address,
        sender_email=sender_email,
        date=date,
        received_date=_iso_date(date),
        message_id=message_id,
        body_text=body_text,
        body_html=body_html,
        truncated=truncated,
        from_header=from_header,
    )


def read_gmail_push(fields: dict[str, str] | None, limits: ParseLimits) -> ParsedEmail:
    """The Apps Script fields ``{subject, sender, body (HTML), date, message_id?}`` as parsed."""
    if not isinstance(fields, dict):
        raise UnreadableEmail("gmail_push entry without gmail fields")
    text = {name: value for name, value in fields.items() if isinstance(value, str)}
    sender_raw, body = text.get("sender", ""), text.get("body", "")
    if not sender_raw.strip() or not body.strip():
        raise UnreadableEmail("gmail_push entry without sender or body")
    sender_address, sender_email = parse_sender(decode_header_value(sender_raw))
    date = raw_header_text(text.get("date"))
    html = _CappedText(limits.max_html_bytes)
    html.add(body)
    if html.truncated:
        logger.warning(
            "PARSE: HTML content truncated (exceeded %d bytes limit)", limits.max_html_bytes
        )
    return ParsedEmail(
        subject=raw_header_text(text.get("subject")),
        sender_address=sender_address,
        sender_email=sender_email,
        date=date,
        received_date=date,
        message_id=raw_header_text(text.get("message_id")),
        body_text="",
        body_html=html.value(),
        truncated=html.truncated,
        from_header=raw_header_text(sender_raw),
    )
