"""Login, logout and magic links (routes).

Failures never tell what was wrong: a bad user name, a bad password and a
throttled account all show "Invalid credentials"; every refused magic link shows
"Invalid or expired link" with the same status. Tokens, passwords and session
ids never reach a log line (the user name is logged masked). Each attempt is
reserved with the throttle before the password is checked (:mod:`.throttle`),
and the hash runs in a worker thread so argon2 never stalls the event loop.

Over 300 lines on purpose: the ways in (password, magic link) and out (logout)
share the generic-failure rule, the pre-session CSRF and the login page
rendering; split, each half would re-state them. The stores are elsewhere
(:mod:`.sessions`, :mod:`.magic`, :mod:`.throttle`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import (
    AdminSession,
    Session,
    clear_session_cookie,
    issue_login_csrf,
    optional_session,
    same_origin,
    session_id_of,
    set_session_cookie,
    verify_login_csrf,
)
from render_signal.gateway.i18n import chosen_language, remember_language
from render_signal.gateway.magic import MagicLinkStore, iso_utc
from render_signal.gateway.passwords import verify_password
from render_signal.gateway.security import client_ip

__all__ = ["INVALID_CREDENTIALS", "INVALID_LINK", "router", "templates"]

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = {"en": "Invalid credentials", "fr": "Identifiants invalides."}
INVALID_LINK = {"en": "Invalid or expired link", "fr": "Lien invalide ou expiré."}
INVALID_LINK_STATUS = 401

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(tags=["auth"])


def _lang(request: Request) -> str:
    # A choice made with ``?lang=`` (here or on the dashboard, remembered in a
    # cookie) wins, so the login page and the page after it speak the same language.
    chosen = chosen_language(request)
    if chosen:
        return chosen
    return "fr" if request.headers.get("accept-language", "").lower().startswith("fr") else "en"


def _mask_user(user: str) -> str:
    return (user[:1] + "***") if user else "***"


def safe_next(request: Request, target: str | None) -> str:
    """A same-host path to go to after login; ``/`` for anything else."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and parts.netloc.lower() != request.headers.get(
        "host", ""
    ).lower():
        return "/"
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")


def _render_login(
    request: Request, *, error: str | None, status_code: int, next_url: str = "/"
) -> HTMLResponse:
    response = HTMLResponse("")
    token = issue_login_csrf(request, response)
    page = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": token, "error": error, "next": next_url, "lang": _lang(request)},
        status_code=status_code,
    )
    for key, value in response.headers.items():
        if key == "set-cookie":
            page.headers.append(key, value)
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next: str | None = None, error: str | None = None
) -> Response:
    """The login form (an authenticated user goes straight on)."""
    if await optional_session(request) is not None:
        return RedirectResponse(safe_next(request, next), status_code=303)
    message = INVALID_CREDENTIALS[_lang(request)] if error else None
    page = _render_login(request, error=message, status_code=200, next_url=safe_next(request, next))
    remember_language(request, page)
    return page


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    ctx: Context,
    username: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the credentials; a new session id on success (rotation)."""
    settings, sessions = ctx.settings, ctx.sessions
    target = safe_next(request, next)
    generic = INVALID_CREDENTIALS[_lang(request)]
    if not verify_login_csrf(request, csrf_token):
        logger.warning("AUTH: login refused (CSRF check failed)")
        return _render_login(request, error=generic, status_code=403, next_url=target)
    throttle = ctx.login_throttle
    ip = client_ip(request)
    wait, delay = await throttle.reserve(username, ip)
    if wait > 0:
        logger.warning("AUTH: login throttled for user %s", _mask_user(username))
        page = _render_login(request, error=generic, status_code=429, next_url=target)
        page.headers["Retry-After"] = str(wait)
        return page
    if delay > 0:
        # Many failures on this account from elsewhere: slow down, never lock out.
        await asyncio.sleep(delay)
    # The hash work happens whatever the user name, so timing reveals nothing.
    password_ok = await asyncio.to_thread(verify_password, settings.dashboard_password, password)
    user_ok = hmac.compare_digest(username.encode(), settings.dashboard_user.encode())
    if not (password_ok and user_ok):
        await throttle.failed(username, ip)
        logger.warning("AUTH: login failed for user %s", _mask_user(username))
        return _render_login(request, error=generic, status_code=401, next_url=target)
    await throttle.succeeded(username, ip)
    old = session_id_of(request)
    if old:
        await sessions.delete(old)
    session_id, _ = await sessions.create(settings.dashboard_user)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, session_id, settings.session_absolute_s)
    logger.info("AUTH: password login for user %s", _mask_user(settings.dashboard_user))
    return response


async def _logout(request: Request, ctx: Context) -> Response:
    session_id = session_id_of(request)
    if session_id:
        await ctx.sessions.delete(session_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response


def _same_origin_navigation(request: Request) -> bool:
    """A click from one of our own pages (not a link or image on another site)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() == "same-origin"
    referer = request.headers.get("referer", "")
    return (
        bool(referer)
        and urlsplit(referer).netloc.lower() == request.headers.get("host", "").lower()
    )


@router.get("/logout", response_class=HTMLResponse)
async def logout_get(request: Request, ctx: Context) -> Response:
    """The original's logout link: ends the session when followed from our own pages;
    from anywhere else (a cross-site link or image) it shows a page with a POST
    button instead, so another site can't log people out."""
    session = await optional_session(request)
    if session is None or _same_origin_navigation(request):
        return await _logout(request, ctx)
    return templates.TemplateResponse(
        request, "logout.html", {"csrf_token": session.csrf_token, "lang": _lang(request)}
    )


@router.post("/logout")
async def logout_post(
    request: Request, ctx: Context, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Same as GET, for forms; refused cross-site or with a wrong token."""
    data = await optional_session(request)
    if data is not None:
        submitted = request.headers.get("x-csrf-token") or csrf_token
        if not same_origin(request) or not hmac.compare_digest(
            submitted.encode(), data.csrf_token.encode()
        ):
            raise ApiError(403, "CSRF token missing or invalid")
    return await _logout(request, ctx)


# -- magic links ---------------------------------------------------------------------
class MagicLinkRequest(BaseModel):
    unlimited: bool = False


class MagicLinkCreated(BaseModel):
    success: bool
    magic_link: str
    expires_at: str | None
    unlimited: bool
    id: str


class MagicLinkInfo(BaseModel):
    id: str
    created_at: str | None
    last_used_at: str | None
    unlimited: bool


class MagicLinkList(BaseModel):
    success: bool
    links: list[MagicLinkInfo]


class RevokeResult(BaseModel):
    success: bool
    revoked: int


@router.post("/api/auth/magic-link", status_code=201, response_model=MagicLinkCreated)
async def create_magic_link(
    request: Request, ctx: Context, session: AdminSession, body: MagicLinkRequest | None = None
) -> dict[str, Any]:
    """A new login link (admin): one-shot (expires after the TTL) or permanent (``unlimited``).

    Either opens an operator session."""
    settings = ctx.settings
    unlimited = bool(body and body.unlimited)
    token, link = await ctx.magic_links.create(session.user, unlimited=unlimited)
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
    logger.info(
        "AUTH: magic link %s created (%s)", link.id, "permanent" if unlimited else "one-shot"
    )
    info = MagicLinkStore.to_api(link)
    return {
        "success": True,
        "magic_link": f"{base}/login/magic/{token}",
        "expires_at": iso_utc(link.expires_at),
        "unlimited": unlimited,
        "id": info["id"],
    }


@router.get("/api/auth/magic-links", response_model=MagicLinkList)
async def list_magic_links(ctx: Context, session: AdminSession) -> dict[str, Any]:
    """Permanent links (admin; one-shot links expire by themselves)."""
    links = await ctx.magic_links.list_permanent()
    return {"success": True, "links": [MagicLinkStore.to_api(link) for _, link in links]}


@router.delete("/api/auth/magic-links/{link_id}", response_model=RevokeResult)
async def revoke_magic_link(ctx: Context, link_id: str, session: AdminSession) -> dict[str, Any]:
    """Revoke one permanent link (admin); the sessions it opened end at once."""
    if not await ctx.magic_links.revoke(link_id):
        raise ApiError(404, "Unknown magic link")
    ended = await ctx.sessions.end_link_sessions(link_id)
    logger.info("AUTH: magic link %s revoked (%d sessions ended)", link_id, ended)
    return {"success": True, "revoked": 1}


@router.delete("/api/auth/magic-links", response_model=RevokeResult)
async def revoke_all_magic_links(ctx: Context, session: AdminSession) -> dict[str, Any]:
    """Revoke every permanent link (admin); the sessions they opened end at once."""
    link_ids = await ctx.magic_links.revoke_all()
    ended = 0
    for link_id in link_ids:
        ended += await ctx.sessions.end_link_sessions(link_id)
    logger.info("AUTH: %d permanent magic links revoked (%d sessions ended)", len(link_ids), ended)
    return {"success": True, "revoked": len(link_ids)}


@router.get("/login/magic/{token}", response_class=HTMLResponse)
async def magic_landing(request: Request, token: str) -> Response:
    """A page with a button; GET never consumes the link (mail scanners prefetch)."""
    response = HTMLResponse("")
    csrf = issue_login_csrf(request, response)
    page = templates.TemplateResponse(
        request,
        "magic_landing.html",
        {"csrf_token": csrf, "token": token, "lang": _lang(request)},
    )
    for key, value in response.headers.items():
        if key == "set-cookie":
            page.headers.append(key, value)
    page.headers["Referrer-Policy"] = "no-referrer"
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/login/magic/{token}", response_class=HTMLResponse)
async def magic_login(
    request: Request,
    ctx: Context,
    token: str,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Consume the link and open a magic-link session; one generic failure."""
    settings, sessions = ctx.settings, ctx.sessions
    consumed = verify_login_csrf(request, csrf_token)
    link = await ctx.magic_links.consume(token) if consumed else None
    created = None
    if link is not None:
        # A permanent link revoked between consume() and here opens nothing.
        link_key = None if link.single_use else ctx.magic_links.token_key(token)
        created = await sessions.create_magic(settings.dashboard_user, link.id, link_key)
    if link is None or created is None:
        logger.warning("AUTH: magic link refused")
        page = _render_login(
            request, error=INVALID_LINK[_lang(request)], status_code=INVALID_LINK_STATUS
        )
        page.headers["Referrer-Policy"] = "no-referrer"
        return page
    old = session_id_of(request)
    if old:
        await sessions.delete(old)
    session_id, _ = created
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, session_id, settings.session_absolute_s)
    logger.info("AUTH: magic-link login (link %s)", link.id)
    return response


class SessionInfo(BaseModel):
    success: bool
    user: str
    kind: str
    role: str
    csrf_token: str
    created_at: float
    can_deploy: bool


@router.get("/api/auth/session", response_model=SessionInfo)
async def session_info(session: Session) -> dict[str, Any]:
    """Who is logged in, how (``kind``), with which ``role`` (admin: password login;
    operator: magic link), and the CSRF token for scripted clients."""
    return {
        "success": True,
        "user": session.user,
        "kind": session.kind,
        "role": session.role,
        "csrf_token": session.csrf_token,
        "created_at": session.created_at,
        "can_deploy": session.role == "admin",
    }
