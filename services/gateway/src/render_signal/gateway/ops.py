"""Operations APIs: webhook log, link journal and system status."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query
from render_signal.common.health import assess
from render_signal.common.keys import STREAM_MAIL_RAW
from render_signal.common.linkjournal import LinkJournal, LinkRecord, LinksFile
from render_signal.common.logs import mask_url
from render_signal.common.timefmt import epoch, iso
from render_signal.common.webhooklog import LOG_KEEP, normalize_days, read_attempts
from render_signal.gateway.context import Context
from render_signal.gateway.guards import Session

__all__ = ["router"]

router = APIRouter(tags=["ops"])

ERROR_STATUSES = frozenset({"error", "dead_letter"})


@router.get("/api/webhook_logs")
async def webhook_logs(
    ctx: Context, session: Session, days: Annotated[int, Query()] = 7
) -> dict[str, Any]:
    """Newest first, at most 50, within ``days`` (default 7; < 1 -> 7; > 30 -> 30)."""
    logs = await read_attempts(ctx.redis, ctx.keys, days)
    return {
        "success": True,
        "logs": msgspec.to_builtins(logs),
        "count": len(logs),
        "days_filter": normalize_days(days),
    }


@router.get("/api/links")
async def links(
    ctx: Context, session: Session, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Offloaded links (file journal plus the Redis journal), newest first."""
    merged: dict[str, LinkRecord] = {}
    for record in LinksFile(ctx.settings.webhook_links_file).read():
        merged[record.source_url] = record
    journal = LinkJournal(ctx.redis, ctx.keys, max_age_s=float("inf"))
    for record in await journal.all():
        merged[record.source_url] = record
    rows = sorted(merged.values(), key=lambda r: r.created_ts() or 0.0, reverse=True)[:limit]
    return {"success": True, "links": msgspec.to_builtins(rows), "count": len(rows)}


@router.get("/api/status")
async def status(ctx: Context, session: Session) -> dict[str, Any]:
    """The verdict (``ok`` | ``degraded`` | ``failing``) and its problems, per service
    and per target (``common.health``), plus streams, dead letters, recent activity."""
    redis, keys = ctx.redis, ctx.keys
    report = await assess(redis, keys)
    now = report.checked_at
    dlq = {s.stream: s.dead_letters for s in report.streams}
    dlq["notify"] = int(await redis.xlen(keys.notify_dead_letters))
    disabled_raw: Any = await redis.hgetall(keys.notify_disabled_targets)
    disabled = []
    for target, value in disabled_raw.items():
        detail: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            loaded = json.loads(value)
            detail = loaded if isinstance(loaded, dict) else {}
        disabled.append({**detail, "target": mask_url(target.decode("utf-8", "replace"))})
    logs = await read_attempts(ctx.redis, keys, 1, limit=LOG_KEEP)
    errors = [entry for entry in logs if entry.status in ERROR_STATUSES]
    last_email = next(
        (s.last_entry_at for s in report.streams if s.stream == STREAM_MAIL_RAW), None
    )
    return {
        "success": True,
        "verdict": report.verdict,
        "problems": msgspec.to_builtins(report.problems),
        "server_time": iso(now),
        "checked_at": now,
        "services": msgspec.to_builtins(report.services),
        "targets": msgspec.to_builtins(report.targets),
        "streams": {
            s.stream: {"length": s.length, "groups": msgspec.to_builtins(s.groups)}
            for s in report.streams
        },
        "dlq": dlq,
        "disabled_targets": disabled,
        "last_email_at": iso(last_email) if last_email else None,
        "last_webhook_at": logs[0].timestamp if logs else None,
        "errors_1h": sum(1 for e in errors if _age(e.timestamp, now) <= 3600),
        "errors_24h": len(errors),
    }


def _age(stamp: str, now: float) -> float:
    moment = epoch(stamp)
    return now - moment if moment is not None else float("inf")
