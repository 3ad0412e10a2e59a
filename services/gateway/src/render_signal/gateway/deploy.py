"""POST /api/deploy_application: redeploy the four Render services, then DEPLOY_CMD.

Per configured service (``RENDER_DEPLOY_HOOK_URL_<SERVICE>`` and/or
``RENDER_SERVICE_ID_<SERVICE>``; the original's single ``RENDER_DEPLOY_HOOK_URL``
and ``RENDER_SERVICE_ID`` are the gateway's), all at once, each as the
original did for its one service: (1) its Deploy Hook -- every hook must start
with the hook prefix, else 400 before anything is called; a 200/201/202/204
answer wins, anything else falls through; (2) ``RENDER_API_KEY`` + its id --
POST ``/v1/services/{id}/deploys`` with ``clearCache`` and, when
``RENDER_IMAGE_URL`` is set, ``imageUrl`` (``{service}`` in it is replaced by
the service name). Any service not redeployed makes the answer a 502 naming
it (the others were triggered). (3) No Render service configured:
``DEPLOY_CMD``, run as an argument list without a shell, in the background.

Only password sessions may deploy (a magic link is a bearer credential).
Every call goes through the guarded outbound client (``common.outboundhttp``):
the hooks and ``RENDER_API_BASE_URL`` are checked at start without DNS and at
connect time on the address actually used.
A Redis lock (SET NX EX 60) keeps two deploys from overlapping. Hook ``key``s
are masked in every log line and the triggering user is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shlex
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import APIRouter
from render_signal.common.outbound import OutboundPolicy
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import AdminSession
from render_signal.gateway.settings import GatewaySettings, RenderService

if TYPE_CHECKING:
    import httpx

__all__ = ["image_for", "mask_hook", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["deploy"])

LOCK_TTL_S = 60
HOOK_TIMEOUT_S = 15.0
API_TIMEOUT_S = 20.0


class Redeployed(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to one service: redeployed (how) or not (why)."""

    service: str
    ok: bool
    method: str | None = None  # "hook" or "api"
    deploy_id: str | None = None
    status: str | None = None
    error: str | None = None


def mask_hook(url: str) -> str:
    """The hook URL with its key hidden (``?key=***``)."""
    return re.sub(r"([?&]key=)[^&]*", r"\1***", url)


def image_for(template: str, service: str) -> str:
    """``RENDER_IMAGE_URL`` for ``service``: ``{service}`` filled in; without the
    placeholder, the original's single image is the gateway's."""
    if "{service}" in template:
        return template.replace("{service}", service)
    return template if service == "gateway" else ""


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


async def _try_hook(client: httpx.AsyncClient, service: RenderService, user: str) -> bool:
    import httpx  # loaded with the client, in _deploy_render

    url = service.hook_url
    try:
        response = await client.get(url, timeout=HOOK_TIMEOUT_S)
    except httpx.HTTPError as exc:
        logger.warning(
            "DEPLOY: %s hook %s failed (%s); falling through",
            service.name,
            mask_hook(url),
            type(exc).__name__,
        )
        return False
    if response.status_code in (200, 201, 202, 204):
        logger.info(
            "DEPLOY: %s triggered via deploy hook %s by user %s", service.name, mask_hook(url), user
        )
        return True
    logger.warning(
        "DEPLOY: %s hook %s answered %d; falling through",
        service.name,
        mask_hook(url),
        response.status_code,
    )
    return False


async def _try_api(
    client: httpx.AsyncClient, settings: GatewaySettings, service: RenderService, user: str
) -> Redeployed:
    base = settings.render_api_base.rstrip("/")
    url = f"{base}/v1/services/{service.service_id}/deploys"
    body = {"clearCache": settings.render_clear_cache}
    image = image_for(settings.render_image_url, service.name)
    if image:
        body["imageUrl"] = image
    headers = {"Authorization": f"Bearer {settings.render_api_key}", "Accept": "application/json"}
    import httpx  # loaded with the client, in _deploy_render

    try:
        response = await client.post(url, json=body, headers=headers, timeout=API_TIMEOUT_S)
    except httpx.HTTPError as exc:
        logger.error("DEPLOY: Render API unreachable for %s (%s)", service.name, type(exc).__name__)
        return Redeployed(service=service.name, ok=False, error=type(exc).__name__)
    if response.status_code not in (200, 201, 202):
        logger.error("DEPLOY: Render API answered %d for %s", response.status_code, service.name)
        return Redeployed(service=service.name, ok=False, error=f"HTTP {response.status_code}")
    data: Any = {}
    with contextlib.suppress(ValueError):
        data = response.json()
    data = data if isinstance(data, dict) else {}
    logger.info("DEPLOY: %s triggered via Render API by user %s", service.name, user)
    deploy_id, status = data.get("id"), data.get("status")
    return Redeployed(
        service=service.name,
        ok=True,
        method="api",
        deploy_id=deploy_id if isinstance(deploy_id, str) else None,
        status=status if isinstance(status, str) and status else "queued",
    )


async def _deploy_one(
    client: httpx.AsyncClient, settings: GatewaySettings, service: RenderService, user: str
) -> Redeployed:
    """The original's order for one service: its hook, then the Render API."""
    if service.hook_url and await _try_hook(client, service, user):
        return Redeployed(service=service.name, ok=True, method="hook")
    if settings.render_api_key and service.service_id:
        return await _try_api(client, settings, service, user)
    missing = "its deploy hook failed" if service.hook_url else "no RENDER_API_KEY"
    return Redeployed(service=service.name, ok=False, error=missing)


async def _deploy_render(
    settings: GatewaySettings, policy: OutboundPolicy, user: str
) -> dict[str, Any]:
    services = settings.render_services
    for service in services:
        if service.hook_url and not service.hook_url.startswith(settings.render_deploy_hook_prefix):
            raise ApiError(
                400,
                f"the {service.name} deploy hook must start with the Render deploy hook URL",
            )
    # httpx (and the guarded client) only here: the gateway makes no other outbound
    # call, and importing httpx at start costs its resident memory for nothing
    # (3 MB, 6.6 MB where httpx's optional CLI dependencies are installed: issue 16).
    from render_signal.common.outboundhttp import guarded_client

    async with guarded_client(policy, timeout=API_TIMEOUT_S) as client:
        results = await asyncio.gather(*(_deploy_one(client, settings, s, user) for s in services))
    done = [r.service for r in results if r.ok]
    failed = [f"{r.service} ({r.error})" for r in results if not r.ok]
    if failed:
        triggered = f"; triggered: {', '.join(done)}" if done else ""
        raise ApiError(502, f"Render API error: not redeployed: {', '.join(failed)}{triggered}")
    via = {"hook": "Deploy Hook", "api": "API"}
    methods = sorted({via[r.method or "api"] for r in results})
    answer: dict[str, Any] = {
        "success": True,
        "message": f"Render deploy triggered via {' and '.join(methods)} for {', '.join(done)}",
        "services": msgspec.to_builtins(results),
    }
    if len(results) == 1 and results[0].method == "api":  # the original's one-service answer
        answer.update(deploy_id=results[0].deploy_id, status=results[0].status)
    return answer


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
        if settings.render_services:
            return await _deploy_render(settings, ctx.outbound, user)
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
            "No deploy method configured: set RENDER_DEPLOY_HOOK_URL_<SERVICE> (or "
            "RENDER_DEPLOY_HOOK_URL), RENDER_API_KEY + RENDER_SERVICE_ID_<SERVICE>, or DEPLOY_CMD",
        )
    except ApiError:
        await redis.delete(lock_key)
        raise
    # A successful trigger keeps the lock for its TTL: no second deploy right after.
