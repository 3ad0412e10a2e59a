"""Dead letters: list and replay the stream DLQs and the notify DLQ.

Ids are ``<short-name>:<entry-id>``: ``mail.raw``, ``mail.received``,
``mail.offloaded`` (the ``<stream>.dlq`` streams written by the streams runtime)
and ``notify`` (``<prefix>notify:deadletters``).

Replay uses the shared protocol in ``render_signal.common.deadletters``: a
stream dead letter goes back to its source stream; a notify dead letter goes
back into notify's schedule and is re-sent with the SAME webhook-id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Request
from redis.asyncio import Redis
from render_signal.common.deadletters import (
    notify_dead_letter_key,
    replay_notify_dead_letter,
    replay_stream_dead_letter,
)
from render_signal.common.keys import ALL_STREAMS
from render_signal.common.logs import mask_url
from render_signal.common.streams import dlq_key
from render_signal.gateway.errors import ApiError
from render_signal.gateway.sessions import CsrfSession, Session
from render_signal.gateway.timeutil import iso, to_epoch

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["dead letters"])

NOTIFY = "notify"
LIST_LIMIT = 200
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _t(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _key(prefix: str, short: str) -> str:
    return notify_dead_letter_key(prefix) if short == NOTIFY else dlq_key(f"{prefix}{short}")


def _stream_item(short: str, entry_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"{short}:{entry_id}",
        "kind": "stream",
        "stream": short,
        "type": _t(fields.get(b"type")),
        "error": _t(fields.get(b"error"))[:500],
        "deliveries": int(_t(fields.get(b"deliveries")) or 0),
        "failed_at": iso(to_epoch(fields.get(b"failed_at"))),
    }
    with contextlib.suppress(ValueError):
        data = json.loads(fields.get(b"data", b"{}"))
        if isinstance(data, dict):
            if data.get("email_id"):
                item["email_id"] = str(data["email_id"])
            if data.get("subject"):
                item["subject"] = str(data["subject"])[:100]
            elif isinstance(data.get("gmail"), dict) and data["gmail"].get("subject"):
                item["subject"] = str(data["gmail"]["subject"])[:100]
    return item


def _notify_item(entry_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    reason = _t(fields.get(b"failure_reason") or fields.get(b"reason"))
    status = _t(fields.get(b"last_status") or fields.get(b"status_code"))
    return {
        "id": f"{NOTIFY}:{entry_id}",
        "kind": "webhook",
        "stream": NOTIFY,
        "reason": reason,
        "error": reason or _t(fields.get(b"last_response"))[:200],
        "email_id": _t(fields.get(b"email_id")),
        "subject": _t(fields.get(b"subject"))[:100],
        "webhook_id": _t(fields.get(b"webhook_id")),
        "target": mask_url(_t(fields.get(b"target"))),
        "status_code": int(status) if status.isdigit() else None,
        "attempts": int(_t(fields.get(b"attempts")) or 0)
        if _t(fields.get(b"attempts")).isdigit()
        else 0,
        "response_snippet": _t(fields.get(b"last_response") or fields.get(b"response_snippet"))[
            :200
        ],
        "failed_at": iso(to_epoch(fields.get(b"failed_at"))),
    }


async def _all(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for short in (*ALL_STREAMS, NOTIFY):
        rows: Any = await redis.xrevrange(_key(prefix, short), count=LIST_LIMIT)
        for entry_id, fields in rows:
            eid = _t(entry_id)
            items.append(
                _notify_item(eid, fields) if short == NOTIFY else _stream_item(short, eid, fields)
            )
    items.sort(key=lambda i: i.get("failed_at") or "", reverse=True)
    return items


@router.get("/api/dead_letters")
async def list_dead_letters(request: Request, session: Session) -> dict[str, Any]:
    """Every dead letter, newest first (targets masked)."""
    items = await _all(request.app.state.redis, request.app.state.settings.common.key_prefix)
    return {"success": True, "dead_letters": items, "count": len(items)}


async def _replay(redis: Redis, prefix: str, dead_letter_id: str) -> bool:
    short, _, entry_id = dead_letter_id.rpartition(":")
    if short not in (*ALL_STREAMS, NOTIFY) or not _ENTRY_ID.match(entry_id):
        raise ApiError(400, "Invalid dead letter id")
    if short == NOTIFY:
        try:
            replayed = await replay_notify_dead_letter(redis, prefix, entry_id) is not None
        except ValueError as exc:
            raise ApiError(400, "Dead letter has no job to replay") from exc
    else:
        # Always back to this deployment's stream, whatever the record claims.
        replayed = await replay_stream_dead_letter(redis, f"{prefix}{short}", entry_id)
    if not replayed:
        return False
    logger.info("DLQ: replayed %s", dead_letter_id)
    return True


@router.post("/api/dead_letters/replay_all")
async def replay_all(request: Request, session: CsrfSession) -> dict[str, Any]:
    """Replay every listed dead letter."""
    redis = request.app.state.redis
    prefix = request.app.state.settings.common.key_prefix
    replayed = 0
    for item in await _all(redis, prefix):
        with contextlib.suppress(ApiError):
            replayed += int(await _replay(redis, prefix, item["id"]))
    return {"success": True, "replayed": replayed}


@router.post("/api/dead_letters/{dead_letter_id}/replay")
async def replay_one(request: Request, dead_letter_id: str, session: CsrfSession) -> dict[str, Any]:
    """Replay one dead letter (404 when it is gone)."""
    prefix = request.app.state.settings.common.key_prefix
    if not await _replay(request.app.state.redis, prefix, dead_letter_id):
        raise ApiError(404, "Unknown dead letter")
    return {"success": True, "replayed": 1}
