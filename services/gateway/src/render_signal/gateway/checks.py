"""The dashboard's test buttons: ``POST /api/test/{webhook,imap,worker}``.

Each test is run by the service that owns the resource, with its real
settings (``common.probes``): notify sends a marked test payload to the
target as a delivery would, ingest logs in to IMAP and selects the mailbox,
offload calls the Worker with its token. The answer is 200 with ``ok`` and
what was met (status, snippet, exact error, a hint); 503 at once when the
service has no live replica (no heartbeat), 504 when none answered in time.
"""

from __future__ import annotations

import logging
import time

import msgspec
from fastapi import APIRouter, Request
from render_signal.common.heartbeat import is_alive, read_heartbeats
from render_signal.common.probes import request_probe
from render_signal.common.records import ProbeKind, ProbeResult
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import OperatorSession
from render_signal.gateway.openapi import MsgspecResponse, body, returns

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["tests"])

#: Who runs which test.
OWNERS: dict[ProbeKind, str] = {"webhook": "notify", "imap": "ingest", "worker": "offload"}
#: Longer than a probe may take on the service side (``ProbeResponder.timeout_s``).
WAIT_S = 35.0


class WebhookTestRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: ``default`` (the main webhook) or a routing rule's id.
    target: str = "default"


class TestAnswer(ProbeResult, kw_only=True):
    success: bool


async def _run(ctx: Context, kind: ProbeKind, target: str, user: str) -> MsgspecResponse:
    service = OWNERS[kind]
    now = time.time()
    beats = [b for b in await read_heartbeats(ctx.redis, ctx.keys) if b.service == service]
    if not any(is_alive(b, now) for b in beats):
        raise ApiError(503, f"{service} is not running: start it to run this test")
    result = await request_probe(
        ctx.redis, ctx.keys, service, kind, target=target, timeout_s=WAIT_S
    )
    if result is None:
        raise ApiError(
            504, f"No {service} replica answered within {WAIT_S:.0f} s: is {service} running?"
        )
    logger.info("TEST: %s ran the %s test: %s", user, kind, "ok" if result.ok else "failed")
    return MsgspecResponse(TestAnswer(**msgspec.structs.asdict(result), success=result.ok))


@router.post(
    "/api/test/webhook", responses=returns(TestAnswer), openapi_extra=body(WebhookTestRequest)
)
async def test_webhook(ctx: Context, session: OperatorSession, request: Request) -> MsgspecResponse:
    """Send a clearly marked test payload to a target; the receiver's reply."""
    raw = await request.body()
    try:
        wanted = msgspec.json.decode(raw or b"{}", type=WebhookTestRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(400, f"Invalid request: {exc}") from exc
    return await _run(ctx, "webhook", wanted.target.strip() or "default", session.user)


@router.post("/api/test/imap", responses=returns(TestAnswer))
async def test_imap(ctx: Context, session: OperatorSession) -> MsgspecResponse:
    """Log in to IMAP and select the mailbox, as the watcher does."""
    return await _run(ctx, "imap", "", session.user)


@router.post("/api/test/worker", responses=returns(TestAnswer))
async def test_worker(ctx: Context, session: OperatorSession) -> MsgspecResponse:
    """Reach the R2 Worker and check that it accepts the token."""
    return await _run(ctx, "worker", "", session.user)
