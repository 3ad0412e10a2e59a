"""Event contracts carried on the streams: versioned, frozen msgspec structs.

Every stream entry has the fields ``type`` (e.g. ``mail.received/1``) and
``data`` (the event as JSON), plus the event's bulk, each in a binary field of
its own (:data:`BULK_FIELDS`): ``raw`` (the RFC 822 bytes of a
:class:`MailRaw`), ``body_text`` and ``body_html`` (UTF-8, of a parsed email).
In ``data`` those fields are left empty. Why: inside JSON the raw bytes were
base64 (4/3 of the email) and HTML bodies were escaped quote by quote, on
every stream and in every copy (the dead-letter stream, notify's job); a
binary field costs its length. A consumer decodes with :func:`decode_entry`,
which puts them back (and still reads entries that carry them in ``data``);
anything unknown or malformed raises :class:`MalformedEvent` and is
dead-lettered by the streams runtime rather than crashing the consumer.
Whoever copies an entry (dead letters, replays) copies :func:`event_fields`.

Adding a field with a default is backward compatible; renaming or retyping one
means a new version number.
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

import msgspec
from render_signal.common.errors import MalformedEvent

__all__ = [
    "ALL_DETECTORS",
    "BULK_FIELDS",
    "DETECTOR_DESABO",
    "DETECTOR_RECADRAGE",
    "DeliveryLink",
    "Detector",
    "Event",
    "MailOffloaded",
    "MailRaw",
    "MailReceived",
    "ParsedMail",
    "decode_entry",
    "encode_entry",
    "event_fields",
]


#: Detector names, as the webhook payload's ``detector`` field carries them.
DETECTOR_RECADRAGE: Final = "recadrage"
DETECTOR_DESABO: Final = "desabonnement_journee_tarifs"
Detector = Literal["recadrage", "desabonnement_journee_tarifs"]
ALL_DETECTORS: tuple[Detector, ...] = (DETECTOR_RECADRAGE, DETECTOR_DESABO)


class MailRaw(msgspec.Struct, frozen=True, kw_only=True, tag="mail.raw/1", tag_field="type"):
    """An email as it arrived, before parsing.

    ``source`` is ``imap``, ``gmail_push`` or ``http_raw``. For ``imap`` and
    ``http_raw`` the RFC 822 bytes are in ``raw``; for ``gmail_push`` the Apps
    Script fields are in ``gmail``.
    """

    event_id: str
    source: Literal["imap", "gmail_push", "http_raw"]
    received_at: float
    raw: bytes = b""
    gmail: dict[str, str] | None = None
    truncated: bool = False
    original_size: int = 0
    mailbox: str = ""
    uidvalidity: int = 0
    uid: int = 0
    imap_arrived_at: float | None = None
    trace: dict[str, float] = {}


class DeliveryLink(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One provider link, as the original's ``delivery_links`` items.

    ``flags`` say how ingest found it, for the operator (not sent in the
    webhook): ``unknown_shape`` (on the provider's own host, but no transfer
    link shape we know: the original took any URL there), ``unwrapped:<gateway>``
    (found inside a mail-security gateway link: ``safelinks``, ``proofpoint``,
    ``mimecast``), ``mimecast_opaque`` (a Mimecast link whose target only
    Mimecast knows; kept as is, ``provider`` from its ``domain`` parameter).
    """

    provider: str
    raw_url: str
    direct_url: str | None = None
    r2_url: str | None = None
    original_filename: str | None = None
    flags: tuple[str, ...] = ()


class ParsedMail(msgspec.Struct, frozen=True, kw_only=True):
    """Fields shared by every event after parsing (not itself a stream event)."""

    event_id: str
    email_id: str
    source: str
    subject: str
    sender_address: str
    sender_email: str
    received_date: str
    body_text: str
    body_html: str
    links: tuple[DeliveryLink, ...] = ()
    detector: str | None = None
    delivery_time: str | None = None
    is_urgent: bool = False
    truncated: bool = False
    received_at: float = 0.0
    trace: dict[str, float] = {}
    #: The values the original's payload carried, for receivers built for it:
    #: the Date header (IMAP, raw) or the Apps Script's ``date`` string
    #: (``receivedDateTime``), the raw From header or ``sender`` field
    #: (``sender_address``). None on events from before these fields.
    date_header: str | None = None
    from_header: str | None = None
    #: The id the original would have given this email (its ``microsoft_graph_email_id``).
    legacy_email_id: str = ""


class MailReceived(ParsedMail, frozen=True, kw_only=True, tag="mail.received/1", tag_field="type"):
    """A parsed, classified email."""


class MailOffloaded(
    ParsedMail, frozen=True, kw_only=True, tag="mail.offloaded/1", tag_field="type"
):
    """A parsed email whose links were offered to R2 (``r2_url`` where it worked)."""

    offload_enabled: bool = False

    @classmethod
    def from_received(
        cls,
        received: MailReceived,
        *,
        links: tuple[DeliveryLink, ...],
        offload_enabled: bool,
        trace: dict[str, float],
    ) -> MailOffloaded:
        """The offloaded form of ``received``: every parsed field kept, links replaced."""
        fields = msgspec.structs.asdict(received)
        fields.update(links=links, offload_enabled=offload_enabled, trace=trace)
        return cls(**fields)


Event = MailRaw | MailReceived | MailOffloaded
E = TypeVar("E", MailRaw, MailReceived, MailOffloaded)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


#: The fields carried beside ``data``, in binary (see the module docstring).
BULK_FIELDS: tuple[str, ...] = ("raw", "body_text", "body_html")
_BULK_KEYS = tuple(name.encode() for name in BULK_FIELDS)


def encode_entry(event: Event) -> dict[str, bytes]:
    """Stream fields for ``event``: ``type``, ``data`` and its bulk fields."""
    type_name = type(event).__struct_config__.tag
    fields = {"type": str(type_name).encode()}
    if isinstance(event, MailRaw):
        if event.raw:
            fields["raw"] = event.raw
            event = msgspec.structs.replace(event, raw=b"")
    else:
        # A lone surrogate raises UnicodeEncodeError here, as it would in msgspec's
        # JSON: no UTF-8 carries it. Ingress replaces them (gateway.ingress._text)
        # and the MIME decoders never produce one.
        fields["body_text"] = event.body_text.encode()
        fields["body_html"] = event.body_html.encode()
        event = msgspec.structs.replace(event, body_text="", body_html="")
    fields["data"] = _encoder.encode(event)
    return fields


def event_fields(fields: dict[bytes, bytes]) -> dict[str, bytes]:
    """The fields of a read entry that make up its event (to copy it elsewhere)."""
    out = {"type": fields.get(b"type", b""), "data": fields.get(b"data", b"")}
    for name, key in zip(BULK_FIELDS, _BULK_KEYS, strict=True):
        if key in fields:
            out[name] = fields[key]
    return out


def _field(fields: dict[bytes, bytes] | dict[str, bytes], name: str) -> bytes | None:
    value = fields.get(name.encode()) if name.encode() in fields else fields.get(name)  # type: ignore[call-overload]
    return value if isinstance(value, bytes) else None


def decode_entry(fields: dict[bytes, bytes] | dict[str, bytes], expected: type[E]) -> E:
    """Decode a stream entry's fields into ``expected`` or raise :class:`MalformedEvent`."""
    data = fields.get(b"data") if b"data" in fields else fields.get("data")  # type: ignore[call-overload]
    if not isinstance(data, bytes | str):
        raise MalformedEvent("entry has no 'data' field")
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedEvent(f"cannot decode event: {exc}") from exc
    if not isinstance(event, expected):
        raise MalformedEvent(
            f"unexpected event type {type(event).__name__}, expected {expected.__name__}"
        )
    if isinstance(event, MailRaw):
        raw = _field(fields, "raw")
        if raw is not None:
            event = msgspec.structs.replace(event, raw=raw)
    else:
        text, html = _field(fields, "body_text"), _field(fields, "body_html")
        if text is not None and html is not None:
            try:
                event = msgspec.structs.replace(
                    event, body_text=text.decode(), body_html=html.decode()
                )
            except UnicodeDecodeError as exc:
                raise MalformedEvent(f"body is not UTF-8: {exc}") from exc
    return event
