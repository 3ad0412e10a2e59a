"""HTTP ingress: Gmail Apps Script push and raw RFC 822 upload, published to ``mail.raw``.

"Accepted" means durably on the stream: the 2xx is sent only after XADD
returned. Redis down means 503 so the sender retries; a 2xx never hides a
dropped email and a non-2xx never hides an accepted one. Bodies are counted
while streamed, so an oversized upload is refused with 413 without being
buffered in full.

The Gmail route answers **200**, not 202: the Apps Script deployed for the
original treats any status but exactly 200 as a failure, keeps its label and
re-sends the message every minute. The raw route answers 202.

Wrong bearer tokens are counted per client address (:class:`.throttle.IngressThrottle`):
past ``INGRESS_MAX_FAILURES`` the address gets 429 with ``Retry-After``, even
with the right token, until its lock ends. Counted in
``render_signal_ingress_auth_failures_total``: ``outcome="rejected"`` per wrong
token checked, ``outcome="throttled"`` per 429 answered.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel
from render_signal.common.configdocs import RuntimeFlags
from render_signal.common.events import MailRaw
from render_signal.common.identity import gmail_email_id, message_id_email_id, raw_message_id
from render_signal.common.streams import publish
from render_signal.gateway.context import Context, GatewayContext
from render_signal.gateway.errors import ApiError
from render_signal.gateway.security import bearer_matches, client_ip

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ingress"])

AUTH_FAILURES = Counter(
    "render_signal_ingress_auth_failures_total",
    "HTTP ingress refusals: a wrong bearer token checked (rejected), a 429 answered (throttled)",
    ["outcome"],
)
for _outcome in ("rejected", "throttled"):
    AUTH_FAILURES.labels(_outcome)


class Accepted(BaseModel):
    success: bool
    status: str
    event_id: str
    stream_id: str
    email_id: str
    message: str


#: Fields of the Apps Script push kept on the event. ``message_id`` is sent by the
#: script shipped in ``deploy/gmail/apps-script.js`` (the original's script has none);
#: the original's ``snippet`` is ignored, as the original did.
GMAIL_FIELDS = ("subject", "sender", "body", "date", "message_id")


def _throttled(wait: int) -> ApiError:
    AUTH_FAILURES.labels("throttled").inc()
    return ApiError(429, "Too many failed attempts", headers={"Retry-After": str(wait)})


async def _authorize(request: Request, ctx: GatewayContext) -> None:
    settings, throttle = ctx.settings, ctx.ingress_throttle
    ip = client_ip(request)
    wait = await throttle.retry_after(ip)
    if wait > 0:
        raise _throttled(wait)
    if not bearer_matches(request, settings.process_api_token):
        AUTH_FAILURES.labels("rejected").inc()
        locked = await throttle.failed(ip)
        if locked > 0:
            raise _throttled(locked)
        raise ApiError(401, "Unauthorized")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "Payload too large")
        except ValueError as exc:
            raise ApiError(400, "Invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "Payload too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _publish(
    ctx: GatewayContext, event: MailRaw, email_id: str, status_code: int
) -> JSONResponse:
    stream_id = await publish(ctx.redis, ctx.keys.mail_raw, event)
    logger.info(
        "INGRESS: accepted %s email (event %s, %d bytes)",
        event.source,
        event.event_id,
        event.original_size,
    )
    return JSONResponse(
        {
            "success": True,
            "status": "accepted",
            "event_id": event.event_id,
            "stream_id": stream_id,
            # The id the webhook will carry as microsoft_graph_email_id ("" when the
            # raw email has no Message-ID: ingest then derives it from its parsed headers).
            "email_id": email_id,
            # One line an Apps Script (or a person with curl) can log as is.
            "message": f"accepted: {event.source} email {email_id or event.event_id} is queued",
        },
        status_code=status_code,
    )


#: A UTF-16 surrogate code point: from JSON only as a lone escape (``"\\ud83d"``),
#: since json.loads joins a valid pair into one character.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: object) -> str:
    """A string field as text that UTF-8 can carry.

    Why: an Apps Script that cuts a body inside an emoji sends half of a
    surrogate pair, which JSON escapes and Python decodes to a lone surrogate;
    no UTF-8 encoder takes it, so the push used to end in a 500 and the email
    was never queued. It becomes U+FFFD, as any decoder replaces a broken byte.
    """
    if not isinstance(value, str):
        return ""
    return _SURROGATE.sub("\ufffd", value)


@router.post(
    "/api/ingress/gmail",
    status_code=200,
    response_model=Accepted,
    responses={400: {}, 401: {}, 409: {}, 413: {}, 429: {}, 503: {}},
)
async def ingress_gmail(request: Request, ctx: Context) -> JSONResponse:
    """The Apps Script contract: JSON ``{subject?, sender, body, date?, message_id?}``."""
    settings = ctx.settings
    await _authorize(request, ctx)
    raw = await _read_body(request, settings.max_ingress_bytes)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise ApiError(400, "Invalid JSON payload")
    fields = {k: _text(payload.get(k)) for k in GMAIL_FIELDS}
    if not fields["message_id"]:
        del fields["message_id"]  # the original's script: the event stays as it was
    for required in ("sender", "body"):
        if not fields[required].strip():
            raise ApiError(400, f"Missing field: {required}")
    flags = (await ctx.watcher.get(RuntimeFlags)).doc
    if not flags.gmail_ingress_enabled:
        raise ApiError(409, "Gmail ingress disabled")
    event = MailRaw(
        event_id=uuid.uuid4().hex,
        source="gmail_push",
        received_at=time.time(),
        gmail=fields,
        original_size=len(raw),
    )
    return await _publish(ctx, event, gmail_email_id(fields), 200)


@router.post(
    "/api/ingress/raw",
    status_code=202,
    response_model=Accepted,
    responses={400: {}, 401: {}, 413: {}, 429: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def ingress_raw(request: Request, ctx: Context) -> JSONResponse:
    """A whole RFC 822 message as the body (``message/rfc822``)."""
    settings = ctx.settings
    await _authorize(request, ctx)
    raw = await _read_body(request, settings.max_ingress_bytes)
    if not raw.strip():
        raise ApiError(400, "Empty message")
    event = MailRaw(
        event_id=uuid.uuid4().hex,
        source="http_raw",
        received_at=time.time(),
        raw=raw,
        original_size=len(raw),
    )
    message_id = raw_message_id(raw)
    email_id = message_id_email_id(message_id) if message_id else ""
    return await _publish(ctx, event, email_id, 202)
