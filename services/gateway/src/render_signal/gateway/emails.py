"""Per-email history: the list (filter, search, pages), one email's timeline, "retry now".

The records are written by the services (``common.timeline``); "retry now" is
the shared protocol in ``common.overrides``. Times are Unix epoch seconds.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, get_args

import msgspec
from fastapi import APIRouter, Path, Query
from render_signal.common.overrides import RetryTarget, retry_email
from render_signal.common.records import EmailState
from render_signal.common.timeline import EmailDetail, EmailSummary, get_email, list_emails
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import OperatorSession, Session
from render_signal.gateway.openapi import MsgspecResponse, returns

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["emails"])

STATES: tuple[str, ...] = get_args(EmailState)
EmailId = Annotated[str, Path(min_length=1, max_length=512)]


class EmailList(msgspec.Struct, kw_only=True):
    success: bool
    emails: list[EmailSummary]
    count: int
    #: Pass as ``cursor`` for the next (older) page; null on the last page.
    next_cursor: str | None


class EmailView(EmailDetail, kw_only=True):
    success: bool = True


class RetryAnswer(msgspec.Struct, kw_only=True):
    success: bool
    email_id: str
    queued: int
    targets: list[RetryTarget]
    message: str


def _cursor(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApiError(400, "Invalid cursor: pass back the next_cursor of the previous page")
    return value


@router.get("/api/emails", responses=returns(EmailList))
async def emails(
    ctx: Context,
    session: Session,
    state: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> MsgspecResponse:
    """Newest first; ``state`` filters, ``q`` matches subject, sender or email id."""
    if state and state not in STATES:
        raise ApiError(400, f"Unknown state {state!r}: expected one of {', '.join(STATES)}")
    found, after = await list_emails(
        ctx.redis, ctx.keys, state=state or None, query=q, limit=limit, before=_cursor(cursor)
    )
    return MsgspecResponse(
        EmailList(
            success=True,
            emails=found,
            count=len(found),
            next_cursor=repr(after) if after is not None else None,
        )
    )


@router.get("/api/emails/{email_id}", responses=returns(EmailView))
async def email(ctx: Context, session: Session, email_id: EmailId) -> MsgspecResponse:
    """Every step of one email, with each delivery attempt as sent and as answered."""
    detail = await get_email(ctx.redis, ctx.keys, email_id)
    if detail is None:
        raise ApiError(404, "Unknown email (never received, or older than the history keeps)")
    return MsgspecResponse(EmailView(**msgspec.structs.asdict(detail)))


@router.post("/api/emails/{email_id}/retry", responses=returns(RetryAnswer, 202))
async def retry(ctx: Context, session: OperatorSession, email_id: EmailId) -> MsgspecResponse:
    """Send the email's retrying, deferred or dead-lettered deliveries now.

    To each target's current URL and settings, with the same webhook-id; a
    deferred one goes out past the sending rules (logged as an override).
    """
    by = f"{session.user} ({session.kind})"
    report = await retry_email(ctx.redis, ctx.keys, email_id, by=by, timeline=ctx.timeline)
    if report is None:
        raise ApiError(404, "Unknown email (never received, or older than the history keeps)")
    if not report.targets:
        raise ApiError(409, f"Nothing to retry: the email is {report.state.replace('_', ' ')}")
    if not report.queued:
        notes = "; ".join(f"{t.target}: {t.note}" for t in report.targets)
        raise ApiError(409, f"Nothing could be retried ({notes})")
    logger.warning(
        "RETRY: %s asked to send email %s now (%d delivery(ies))", by, email_id, report.queued
    )
    return MsgspecResponse(
        RetryAnswer(
            success=True,
            email_id=email_id,
            queued=report.queued,
            targets=report.targets,
            message=f"{report.queued} delivery(ies) will be sent now",
        ),
        status_code=202,
    )
