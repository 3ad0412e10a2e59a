"""POST /api/deploy_application: Render Deploy Hook, then Render API, then DEPLOY_CMD.

Order as the original: (1) ``RENDER_DEPLOY_HOOK_URL`` — must start with the
hook prefix, else 400 with no fallthrough; a 200/201/202/204 answer wins,
anything else falls through; (2) ``RENDER_API_KEY`` + ``RENDER_SERVICE_ID`` —
POST ``/v1/services/{id}/deploys``; non-2xx is a 502; (3) ``DEPLOY_CMD`` run
as an argument list without a shell, in the background.

Only password sessions may deploy (a magic link is a bearer credential).
Both calls go through the guarded outbound client (``common.outboundhttp``):
the hook and ``RENDER_API_BASE_URL`` are checked at start without DNS and at
connect time on the address actually used.
A Redis lock (SET NX EX 60) keeps two deploys from overlapping. The hook's
``key`` is masked in every log line and the triggering user is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shlex
from typing import Any

import httpx
from fastapi import APIRouter
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.outboundhttp import guarded_client
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import AdminSession
from render_signal.gateway.settings import GatewaySettings

__all__ = ["mask_hook", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["deploy"])

LOCK_TTL_S = 60
HOOK_TIMEOUT_S = 15.0
API_TIMEOUT_S = 20.0


def mask_hook(url: str) -> str:
    """The hook URL with its key hidden (``?key=***``)."""
    return re.sub(r"([?&]key=)[^&]*", r"\1***", url)


async def _run_command(argv: list[str], user: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        code = await process.wait()
    except OSError as exc:
        logger.error("DEPLOY: local command failed to start (%s)", type(exc).__name__)
        return
    logger.info("DEPLOY: local command finished with exit code %d (user %s)", code, user)


async def _try_hook(
    settings: GatewaySettings, policy: OutboundPolicy, user: str
) -> dict[str, Any] | None:
    url = settings.render_deploy_hook_url
    if not url.startswith(settings.render_deploy_hook_prefix):
        raise ApiError(400, "RENDER_DEPLOY_HOOK_URL must start with the Render deploy hook URL")
    try:
        async with guarded_client(policy, timeout=HOOK_TIMEOUT_S) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        logger.warning(
            "DEPLOY: hook %s failed (%s); falling through", mask_hook(url), type(exc).__name__
        )
        return None
    if response.status_code in (200, 201, 202, 204):
        logger.info("DEPLOY: triggered via deploy hook %s by user %s", mask_hook(url), user)
        return {"success": True, "message": "Render deploy triggered via Deploy Hook"}
    logger.warning(
        "DEPLOY: hook %s answered %d; falling through", mask_hook(url), response.status_code
    )
    return None


async def _try_api(settings: GatewaySettings, policy: OutboundPolicy, user: str) -> dict[str, Any]:
    url = f"{settings.render_api_base.rstrip('/')}/v1/services/{settings.render_service_id}/deploys"
    body: dict[str, Any] = {"clearCache": settings.render_clear_cache}
    if settings.render_image_url:
        body["imageUrl"] = settings.render_image_url
    try:
        async with guarded_client(policy, timeout=API_TIMEOUT_S) as client:
            response = await client.post(
                url,
                json=body,
                headers={
                    "Authorization": f"Bearer {settings.render_api_key}",
                    "Accept": "application/json",
                },
            )
    except httpx.HTTPError as exc:
        logger.error("DEPLOY: Render API unreachable (%s)", type(exc).__name__)
        raise ApiError(502, f"Render API error: {type(exc).__name__}") from exc
    if response.status_code not in (200, 201, 202):
        logger.error("DEPLOY: Render API answered %d", response.status_code)
        raise ApiError(502, f"Render API error: HTTP {response.status_code}")
    data: Any = {}
    with contextlib.suppress(ValueError):
        data = response.json()
    data = data if isinstance(data, dict) else {}
    logger.info("DEPLOY: triggered via Render API by user %s", user)
    return {
        "success": True,
        "message": "Render deploy triggered via API",
        "deploy_id": data.get("id"),
        "status": data.get("status") or "queued",
    }


@router.post("/api/deploy_application")
async def deploy_application(ctx: Context, session: AdminSession) -> dict[str, Any]:
    """Redeploy (password sessions only; 409 while another deploy is starting)."""
    settings = ctx.settings
    redis = ctx.redis
    lock_key = ctx.keys.deploy_lock
    token = secrets.token_hex(8)
    if not await redis.set(lock_key, token, nx=True, ex=LOCK_TTL_S):
        raise ApiError(409, "A deploy is already in progress")
    user = session.user
    try:
        if settings.render_deploy_hook_url:
            result = await _try_hook(settings, ctx.outbound, user)
            if result is not None:
                return result
        if settings.render_api_key and settings.render_service_id:
            return await _try_api(settings, ctx.outbound, user)
        if settings.deploy_cmd:
            try:
                argv = shlex.split(settings.deploy_cmd)
            except ValueError as exc:
                raise ApiError(400, "DEPLOY_CMD cannot be parsed") from exc
            if not argv:
                raise ApiError(400, "DEPLOY_CMD is empty")
            task = asyncio.create_task(_run_command(argv, user))
            background = ctx.background
            background.add(task)
            task.add_done_callback(background.discard)
            logger.info("DEPLOY: local fallback command scheduled by user %s", user)
            return {"success": True, "message": "Deploy scheduled (local fallback)"}
        raise ApiError(
            400,
            "No deploy method configured: set RENDER_DEPLOY_HOOK_URL, "
            "RENDER_API_KEY + RENDER_SERVICE_ID, or DEPLOY_CMD",
        )
    except ApiError:
        await redis.delete(lock_key)
        raise
    # A successful trigger keeps the lock for its TTL: no second deploy right after.
