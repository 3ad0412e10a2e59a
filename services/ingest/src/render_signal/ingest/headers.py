"""Header and charset decoding that never raises and does bounded work.

CPython's structured header parser (``email._header_value_parser``) is
super-linear on long hostile values (a 1 MB ``Subject`` takes tens of seconds
on 3.11) and recurses once per nested comment, so a ``Content-Type`` made of
thousands of ``(`` raises RecursionError *during* parsing. :class:`BoundedPolicy`
caps every header value as the parser reads it, neutralises deep comment
nesting, and stops keeping header values after a per-message budget, so every
later access works on a small string.

The headers we publish (Subject, From, Date, Message-ID) are decoded here from
the raw values, never through the structured parser.
"""

from __future__ import annotations

import codecs
import email.errors
import email.header
import email.utils
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

from render_signal.common.identity import clean_header_value, sender_email_of

__all__ = [
    "MAX_HEADER_CHARS",
    "BoundedPolicy",
    "clean_header",
    "decode_bytes",
    "decode_header_value",
    "parse_sender",
    "raw_header_text",
]

#: Longest header value kept (real Subjects and Froms are far shorter).
MAX_HEADER_CHARS = 2048
#: MIME structure headers are short in practice; the parser touches them per part.
MAX_MIME_HEADER_CHARS = 256
#: Header lines kept per message; later ones are stored empty.
MAX_HEADERS_PER_MESSAGE = 2000
_MIME_HEADERS = frozenset(
    {"content-type", "content-disposition", "content-transfer-encoding", "mime-version"}
)
_NESTING_LIMIT = 32
#: Parameters kept on a MIME header (charset, boundary, name, format, delsp...).
_MAX_PARAMS = 8
_LATIN1_NAMES = frozenset({"latin_1", "iso8859-1", "iso-8859-1", "ascii", "us-ascii"})
#: Parsed header values kept across messages (see ``BoundedPolicy._shared_parse``).
_MAX_SHARED_PARSES = 256
_SHARED_PARSES: dict[tuple[str, str], Any] = {}


class BoundedPolicy(EmailPolicy):
    """``email.policy.default`` with capped header values. Make one per parse."""

    def __init__(self) -> None:
        super().__init__(message_factory=EmailMessage)
        object.__setattr__(self, "_headers_seen", 0)
        object.__setattr__(self, "_parsed", {})

    def header_fetch_parse(self, name: str, value: str) -> Any:
        # The parser and our walk ask for Content-Type several times per part;
        # parse each distinct value once (header objects are immutable).
        cache: dict[tuple[str, str], Any] = getattr(self, "_parsed", {})
        key = (name.lower(), value)
        found = cache.get(key)
        if found is None:
            found = self._shared_parse(name, value)
            if len(cache) < MAX_HEADERS_PER_MESSAGE:
                cache[key] = found
        return found

    def _shared_parse(self, name: str, value: str) -> Any:
        # A few values (``text/plain; charset="utf-8"``, ``quoted-printable``)
        # recur in nearly every email, and a parse costs tens of microseconds
        # (HeaderRegistry builds a class per call): 0.39 CPU ms per bench email,
        # 5.3 % of ingest's samples (bench/results/profile-after.txt). The parse
        # is a function of (name, value) alone and the objects are read-only, so
        # messages share them; keyed on the exact name, as a fresh parse keeps it.
        if type(value) is not str or len(value) > MAX_MIME_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        key = (name, value)
        found = _SHARED_PARSES.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_SHARED_PARSES) >= _MAX_SHARED_PARSES:
                _SHARED_PARSES.clear()  # distinct values (boundaries) churn; stays bounded
            _SHARED_PARSES[key] = found
        return found

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        seen: int = getattr(self, "_headers_seen", 0) + 1
        object.__setattr__(self, "_headers_seen", seen)
        if seen > MAX_HEADERS_PER_MESSAGE:
            return name, ""
        limit = MAX_MIME_HEADER_CHARS if name.lower() in _MIME_HEADERS else MAX_HEADER_CHARS
        if len(value) > limit:
            value = value[:limit]
        if limit == MAX_MIME_HEADER_CHARS and value.count(";") > _MAX_PARAMS:
            value = ";".join(value.split(";", _MAX_PARAMS + 1)[: _MAX_PARAMS + 1])
        if value.count("(") > _NESTING_LIMIT:
            value = value.replace("(", " ").replace(")", " ")
        return name, value


# One line, no NUL, no CR/LF: shared with the id rules so ids match across services.
clean_header = clean_header_value


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data`` declared as ``charset``; never raises.

    Unknown, invalid or non-text codecs (``base64``, ``zlib``...) fall back to
    UTF-8 then Latin-1. ISO-8859-1/ASCII labels are read as Windows-1252 (what
    mailers actually send), as browsers do.
    """
    name = (charset or "").strip().strip("\"'").split("*", 1)[0].lower()
    codec: codecs.CodecInfo | None = None
    if name and not name.startswith(("unknown", "x-unknown")):
        try:
            codec = codecs.lookup(name)
        except (LookupError, ValueError, TypeError):
            codec = None
        if codec is not None and not getattr(codec, "_is_text_encoding", True):
            codec = None
    if codec is not None and codec.name not in _LATIN1_NAMES:
        try:
            return data.decode(codec.name)
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is not None and codec.name not in _LATIN1_NAMES:
        try:
            return data.decode(codec.name, errors="replace")
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _raw_to_text(value: str) -> str:
    """Raw header value (8-bit bytes as surrogates) -> text."""
    value = value.replace("\r", "").replace("\n", "")
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogateescape")
    return decode_bytes(data, "utf-8")


def raw_header_text(raw: str | None) -> str:
    """A raw header value as one clean line of text, RFC 2047 words left encoded."""
    return clean_header(_raw_to_text(raw[:MAX_HEADER_CHARS])) if raw else ""


def decode_header_value(raw: str | None) -> str:
    """RFC 2047-decode a raw header value (any charset, never raises), one clean line."""
    if not raw:
        return ""
    text = _raw_to_text(raw[:MAX_HEADER_CHARS])
    if "=?" not in text:
        return clean_header(text)
    try:
        chunks = email.header.decode_header(text)
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return clean_header(text)
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:
            try:
                parts.append(chunk.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                parts.append(chunk.decode("latin-1"))
        else:
            parts.append(decode_bytes(chunk, charset))
    return clean_header("".join(parts))


def parse_sender(value: str) -> tuple[str, str]:
    """``(display form, lowercased address)`` from a decoded From value."""
    return clean_header(value), sender_email_of(value)
