"""Operations APIs: webhook log, link journal and system status."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query
from render_signal.common.health import Problem, ServiceHealth, Verdict, assess
from render_signal.common.keys import STREAM_MAIL_RAW
from render_signal.common.linkjournal import LinkJournal, LinkRecord, LinksFile
from render_signal.common.logs import mask_url
from render_signal.common.records import (
    DisabledTarget,
    GroupStatus,
    TargetHealth,
    WebhookAttempt,
)
from render_signal.common.timefmt import epoch, iso
from render_signal.common.webhooklog import LOG_KEEP, normalize_days, read_attempts
from render_signal.gateway.context import Context
from render_signal.gateway.guards import Session
from render_signal.gateway.openapi import MsgspecResponse, returns

__all__ = ["router"]

router = APIRouter(tags=["ops"])

ERROR_STATUSES = frozenset({"error", "dead_letter"})


class WebhookLogList(msgspec.Struct, kw_only=True):
    success: bool
    logs: list[WebhookAttempt]
    count: int
    days_filter: int


class LinkList(msgspec.Struct, kw_only=True):
    success: bool
    links: list[LinkRecord]
    count: int


class DisabledTargetView(DisabledTarget, kw_only=True):
    target: str  # masked


class StreamView(msgspec.Struct, kw_only=True):
    length: int
    groups: list[GroupStatus]


class StatusView(msgspec.Struct, kw_only=True):
    """``common.health.StatusReport`` plus the dashboard's activity figures."""

    success: bool
    verdict: Verdict
    problems: list[Problem]
    server_time: str
    checked_at: float
    services: list[ServiceHealth]
    targets: list[TargetHealth]
    streams: dict[str, StreamView]
    dlq: dict[str, int]
    disabled_targets: list[DisabledTargetView]
    last_email_at: str | None
    last_webhook_at: str | None
    errors_1h: int
    errors_24h: int


_disabled_decoder = msgspec.json.Decoder(DisabledTarget)


@router.get("/api/webhook_logs", responses=returns(WebhookLogList))
async def webhook_logs(
    ctx: Context, session: Session, days: Annotated[int, Query()] = 7
) -> MsgspecResponse:
    """Newest first, at most 50, within ``days`` (default 7; < 1 -> 7; > 30 -> 30)."""
    logs = await read_attempts(ctx.redis, ctx.keys, days)
    return MsgspecResponse(
        WebhookLogList(success=True, logs=logs, count=len(logs), days_filter=normalize_days(days))
    )


@router.get("/api/links", responses=returns(LinkList))
async def links(
    ctx: Context, session: Session, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> MsgspecResponse:
    """Offloaded links (file journal plus the Redis journal), newest first."""
    merged: dict[str, LinkRecord] = {}
    for record in LinksFile(ctx.settings.webhook_links_file).read():
        merged[record.source_url] = record
    journal = LinkJournal(ctx.redis, ctx.keys, max_age_s=float("inf"))
    for record in await journal.all():
        merged[record.source_url] = record
    rows = sorted(merged.values(), key=lambda r: r.created_ts() or 0.0, reverse=True)[:limit]
    return MsgspecResponse(LinkList(success=True, links=rows, count=len(rows)))


async def _disabled_targets(ctx: Context) -> list[DisabledTargetView]:
    raw: dict[bytes, bytes] = await ctx.redis.hgetall(ctx.keys.notify_disabled_targets)  # type: ignore[assignment]
    found: list[DisabledTargetView] = []
    for target, value in raw.items():
        url = mask_url(target.decode("utf-8", "replace"))
        try:
            record = _disabled_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            record = DisabledTarget(disabled_at="")
        found.append(DisabledTargetView(**msgspec.structs.asdict(record), target=url))
    return found


@router.get("/api/status", responses=returns(StatusView))
async def status(ctx: Context, session: Session) -> MsgspecResponse:
    """The verdict (``ok`` | ``degraded`` | ``failing``) and its problems, per service
    and per target (``common.health``), plus streams, dead letters, recent activity."""
    redis, keys = ctx.redis, ctx.keys
    report = await assess(redis, keys)
    now = report.checked_at
    dlq = {s.stream: s.dead_letters for s in report.streams}
    dlq["notify"] = int(await redis.xlen(keys.notify_dead_letters))
    logs = await read_attempts(ctx.redis, keys, 1, limit=LOG_KEEP)
    errors = [entry for entry in logs if entry.status in ERROR_STATUSES]
    last_email = next(
        (s.last_entry_at for s in report.streams if s.stream == STREAM_MAIL_RAW), None
    )
    return MsgspecResponse(
        StatusView(
            success=True,
            verdict=report.verdict,
            problems=report.problems,
            server_time=iso(now),
            checked_at=now,
            services=report.services,
            targets=report.targets,
            streams={
                s.stream: StreamView(length=s.length, groups=s.groups) for s in report.streams
            },
            dlq=dlq,
            disabled_targets=await _disabled_targets(ctx),
            last_email_at=iso(last_email) if last_email else None,
            last_webhook_at=logs[0].timestamp if logs else None,
            errors_1h=sum(1 for e in errors if _age(e.timestamp, now) <= 3600),
            errors_24h=len(errors),
        )
    )


def _age(stamp: str, now: float) -> float:
    moment = epoch(stamp)
    return now - moment if moment is not None else float("inf")
