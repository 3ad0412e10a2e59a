"""Dead letters: list and replay the stream DLQs and the webhook dead letters.

Ids are ``<short-name>:<entry-id>``: ``mail.raw``, ``mail.received``,
``mail.offloaded`` (the ``<stream>.dlq`` streams written by the streams runtime)
and ``notify`` (webhooks notify gave up on, ``records.DeadLetter``).

Replay uses the shared protocol in ``render_signal.common.deadletters``: a
stream dead letter goes back to its source stream; a webhook dead letter goes
back into notify's schedule and is re-sent with the SAME webhook-id.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Literal

import msgspec
from fastapi import APIRouter
from redis.asyncio import Redis
from render_signal.common.deadletters import (
    list_webhook_dead_letters,
    replay_stream_dead_letter,
    replay_webhook_dead_letter,
)
from render_signal.common.keys import ALL_STREAMS, Keys
from render_signal.common.logs import mask_url
from render_signal.common.streams import read_range
from render_signal.common.timefmt import iso
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import CsrfSession, Session
from render_signal.gateway.openapi import MsgspecResponse, returns

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["dead letters"])

NOTIFY = "notify"
LIST_LIMIT = 200
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _t(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _float(value: object) -> float | None:
    try:
        return float(_t(value))
    except ValueError:
        return None


class DeadLetterItem(msgspec.Struct, kw_only=True):
    """One dead letter as the dashboard lists it (targets masked)."""

    id: str
    kind: Literal["stream", "webhook"]
    stream: str
    error: str
    failed_at: str | None
    email_id: str | None = None
    subject: str | None = None
    type: str | None = None
    deliveries: int | None = None
    reason: str | None = None
    webhook_id: str | None = None
    target: str | None = None
    status_code: int | None = None
    attempts: int | None = None
    response_snippet: str | None = None


class DeadLetterList(msgspec.Struct, kw_only=True):
    success: bool
    dead_letters: list[DeadLetterItem]
    count: int


class _Embedded(msgspec.Struct):
    """What a stream entry's event may tell about its email."""

    email_id: str | None = None
    subject: str | None = None
    gmail: dict[str, str] | None = None


def _stream_item(short: str, entry_id: str, fields: dict[bytes, bytes]) -> DeadLetterItem:
    failed = _float(fields.get(b"failed_at"))
    item = DeadLetterItem(
        id=f"{short}:{entry_id}",
        kind="stream",
        stream=short,
        type=_t(fields.get(b"type")),
        error=_t(fields.get(b"error"))[:500],
        deliveries=int(_t(fields.get(b"deliveries")) or 0),
        failed_at=iso(failed) if failed else None,
    )
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
        data = msgspec.json.decode(fields.get(b"data", b"{}"), type=_Embedded)
        item.email_id = data.email_id
        subject = data.subject or (data.gmail or {}).get("subject")
        item.subject = subject[:100] if subject else None
    return item


async def _all(redis: Redis, keys: Keys) -> list[DeadLetterItem]:
    items: list[DeadLetterItem] = []
    for short in ALL_STREAMS:
        rows = await read_range(
            redis, keys.dlq(keys.stream(short)), count=LIST_LIMIT, newest_first=True
        )
        items.extend(_stream_item(short, _t(entry_id), fields) for entry_id, fields in rows)
    for entry_id, letter in await list_webhook_dead_letters(redis, keys, LIST_LIMIT):
        items.append(
            DeadLetterItem(
                id=f"{NOTIFY}:{entry_id}",
                kind="webhook",
                stream=NOTIFY,
                reason=letter.failure_reason,
                error=letter.failure_reason,
                email_id=letter.email_id,
                subject=letter.subject,
                webhook_id=letter.webhook_id,
                target=mask_url(letter.target),
                status_code=letter.status_code,
                attempts=letter.attempts,
                response_snippet=letter.response_snippet,
                failed_at=iso(letter.failed_at),
            )
        )
    items.sort(key=lambda i: i.failed_at or "", reverse=True)
    return items


@router.get("/api/dead_letters", responses=returns(DeadLetterList))
async def list_dead_letters(ctx: Context, session: Session) -> MsgspecResponse:
    """Every dead letter, newest first (targets masked)."""
    items = await _all(ctx.redis, ctx.keys)
    return MsgspecResponse(DeadLetterList(success=True, dead_letters=items, count=len(items)))


async def _replay(redis: Redis, keys: Keys, dead_letter_id: str) -> bool:
    short, _, entry_id = dead_letter_id.rpartition(":")
    if short not in (*ALL_STREAMS, NOTIFY) or not _ENTRY_ID.match(entry_id):
        raise ApiError(400, "Invalid dead letter id")
    if short == NOTIFY:
        try:
            replayed = await replay_webhook_dead_letter(redis, keys, entry_id) is not None
        except ValueError as exc:
            raise ApiError(400, "Dead letter has no job to replay") from exc
    else:
        # Always back to this deployment's stream, whatever the record claims.
        replayed = await replay_stream_dead_letter(redis, keys.stream(short), entry_id)
    if not replayed:
        return False
    logger.info("DLQ: replayed %s", dead_letter_id)
    return True


@router.post("/api/dead_letters/replay_all")
async def replay_all(ctx: Context, session: CsrfSession) -> dict[str, object]:
    """Replay every listed dead letter."""
    replayed = 0
    for item in await _all(ctx.redis, ctx.keys):
        with contextlib.suppress(ApiError):
            replayed += int(await _replay(ctx.redis, ctx.keys, item.id))
    return {"success": True, "replayed": replayed}


@router.post("/api/dead_letters/{dead_letter_id}/replay")
async def replay_one(ctx: Context, dead_letter_id: str, session: CsrfSession) -> dict[str, object]:
    """Replay one dead letter (404 when it is gone)."""
    if not await _replay(ctx.redis, ctx.keys, dead_letter_id):
        raise ApiError(404, "Unknown dead letter")
    return {"success": True, "replayed": 1}
