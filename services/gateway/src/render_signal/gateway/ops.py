"""Operations APIs: webhook log, link journal and system status."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from render_signal.common.heartbeat import read_heartbeats
from render_signal.common.keys import ALL_STREAMS
from render_signal.common.logs import mask_url
from render_signal.common.streams import dlq_key
from render_signal.gateway.sessions import Session
from render_signal.gateway.timeutil import iso, to_epoch

__all__ = ["read_link_file", "router"]

router = APIRouter(tags=["ops"])

LOG_SCAN = 500
LOG_LIMIT = 50
ERROR_STATUSES = frozenset({"error", "dead_letter"})


def _prefix(request: Request) -> str:
    prefix: str = request.app.state.settings.common.key_prefix
    return prefix


async def _log_entries(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    raw: Any = await redis.lrange(f"{prefix}webhook_logs", 0, LOG_SCAN - 1)
    entries: list[dict[str, Any]] = []
    for item in raw:
        with contextlib.suppress(ValueError):
            entry = json.loads(item)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


@router.get("/api/webhook_logs")
async def webhook_logs(
    request: Request, session: Session, days: Annotated[int, Query()] = 7
) -> dict[str, Any]:
    """Newest first, at most 50, within ``days`` (default 7; < 1 -> 7; > 30 -> 30)."""
    days = 7 if days < 1 else min(days, 30)
    cutoff = time.time() - days * 86400
    logs = []
    for entry in await _log_entries(request.app.state.redis, _prefix(request)):
        stamp = to_epoch(entry.get("timestamp"))
        if stamp is not None and stamp < cutoff:
            continue  # unparseable timestamps are kept, as the original did
        logs.append(entry)
        if len(logs) >= LOG_LIMIT:
            break
    return {"success": True, "logs": logs, "count": len(logs), "days_filter": days}


def read_link_file(path: Path) -> list[dict[str, Any]]:
    """The JSON array journal (missing or corrupt file -> empty)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


@router.get("/api/links")
async def links(
    request: Request, session: Session, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Offloaded links (file journal plus the Redis journal), newest first."""
    merged: dict[str, dict[str, Any]] = {}
    for item in read_link_file(Path(request.app.state.settings.webhook_links_file)):
        source = str(item.get("source_url") or "")
        if source:
            merged[source] = item
    raw: dict[bytes, bytes] = await request.app.state.redis.hgetall(
        f"{_prefix(request)}offload:links"
    )
    for key, value in raw.items():
        with contextlib.suppress(ValueError):
            record = json.loads(value)
            if isinstance(record, dict):
                merged[key.decode("utf-8", "replace")] = {"source_url": key.decode(), **record}
    rows: list[tuple[float, dict[str, Any]]] = []
    for source, item in merged.items():
        created = to_epoch(item.get("created_at"))
        row = {
            "source_url": source,
            "r2_url": item.get("r2_url"),
            "provider": item.get("provider"),
            "original_filename": item.get("original_filename"),
            "created_at": iso(created),
        }
        rows.append((created or 0.0, row))
    rows.sort(key=lambda r: r[0], reverse=True)
    result = [row for _, row in rows[:limit]]
    return {"success": True, "links": result, "count": len(result)}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def _stream_status(redis: Redis, key: str) -> dict[str, Any]:
    length = int(await redis.xlen(key))
    groups: list[dict[str, Any]] = []
    try:
        infos: Any = await redis.xinfo_groups(key)
    except ResponseError:
        infos = []
    for info in infos:
        info = {_text(k): v for k, v in info.items()}
        lag = info.get("lag")
        if lag is None:
            last = _text(info.get("last-delivered-id", "0-0"))
            after: Any = await redis.xrange(key, min=f"({last}", max="+", count=10_001)
            lag = len(after)
        groups.append(
            {
                "name": _text(info.get("name", "")),
                "pending": int(info.get("pending", 0)),
                "lag": int(lag),
                "consumers": int(info.get("consumers", 0)),
            }
        )
    return {"length": length, "groups": groups}


async def _last_entry_time(redis: Redis, key: str) -> float | None:
    # last-generated-id survives trimming (handled entries are trimmed away).
    try:
        info: Any = await redis.xinfo_stream(key)
    except ResponseError:
        return None
    last = _text(info.get("last-generated-id") or info.get(b"last-generated-id") or "0-0")
    millis = int(last.split("-")[0])
    return millis / 1000 if millis else None


@router.get("/api/status")
async def status(request: Request, session: Session) -> dict[str, Any]:
    """Services (heartbeats), streams and groups, DLQ sizes, recent activity."""
    redis: Redis = request.app.state.redis
    prefix = _prefix(request)
    now = time.time()
    services = []
    for beat in await read_heartbeats(redis, prefix):
        ts = to_epoch(beat.get("ts"))
        services.append(
            {
                "service": beat.get("service"),
                "instance": beat.get("instance"),
                "alive": True,
                "ts": iso(ts),
                "age_s": round(now - ts, 1) if ts else None,
                "info": {k: v for k, v in beat.items() if k not in ("service", "instance", "ts")},
            }
        )
    streams = {name: await _stream_status(redis, f"{prefix}{name}") for name in ALL_STREAMS}
    dlq = {name: int(await redis.xlen(dlq_key(f"{prefix}{name}"))) for name in ALL_STREAMS}
    dlq["notify"] = int(await redis.xlen(f"{prefix}notify:deadletters"))
    disabled_raw: Any = await redis.hgetall(f"{prefix}notify:disabled_targets")
    disabled = []
    for target, value in disabled_raw.items():
        detail: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            loaded = json.loads(value)
            detail = loaded if isinstance(loaded, dict) else {}
        disabled.append({**detail, "target": mask_url(_text(target))})
    logs = await _log_entries(redis, prefix)
    stamps = [to_epoch(e.get("timestamp")) for e in logs if e.get("status") in ERROR_STATUSES]
    errors_1h = sum(1 for s in stamps if s is not None and now - s <= 3600)
    errors_24h = sum(1 for s in stamps if s is not None and now - s <= 86400)
    last_email = await _last_entry_time(redis, f"{prefix}mail.raw")
    return {
        "success": True,
        "server_time": iso(now),
        "services": services,
        "streams": streams,
        "dlq": dlq,
        "disabled_targets": disabled,
        "last_email_at": iso(last_email),
        "last_webhook_at": logs[0].get("timestamp") if logs else None,
        "errors_1h": errors_1h,
        "errors_24h": errors_24h,
    }
