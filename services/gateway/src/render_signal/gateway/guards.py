"""Who may call a route: the session cookie, CSRF protection and the auth dependencies.

CSRF: a synchronizer token per session (``X-CSRF-Token`` header or
``csrf_token`` form field, compared in constant time) plus a Sec-Fetch-Site /
Origin check. Before login there is no session, so the login and magic-link
forms use a signed double-submit cookie (``rs_login_csrf`` holds a nonce; the
form carries ``HMAC(SECRET_KEY, nonce)``).

The session cookie is ``__Host-rs_session`` when the browser talks https to
us (Secure, Path=/, no Domain: a sibling subdomain or a plain-http page can't
set or shadow it) and ``rs_session`` on plain http (dev); each scheme reads
only its own name.

Roles (``SessionData.role``): ``OperatorSession`` is any live session, with
the CSRF check on state changes; ``AdminSession`` adds "password login only",
403 otherwise. A magic link is a bearer credential that can travel in a mail
folder, so what it opens may view and operate (replay, the time window,
Absence Globale, the sending switch) but not change where webhooks go or
which secrets they carry, mint more links, export or import the config, or
deploy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from render_signal.gateway.context import context
from render_signal.gateway.errors import ApiError, PageRedirect
from render_signal.gateway.security import is_https
from render_signal.gateway.sessions import SessionData

__all__ = [
    "ADMIN_ONLY",
    "HTTPS_SESSION_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "AdminSession",
    "CsrfSession",
    "OperatorSession",
    "PageSession",
    "PasswordSession",
    "Session",
    "clear_session_cookie",
    "csrf_protect",
    "issue_login_csrf",
    "optional_session",
    "require_admin",
    "require_admin_for",
    "require_page_session",
    "require_password_session",
    "require_session",
    "same_origin",
    "session_cookie",
    "session_id_of",
    "set_session_cookie",
    "verify_login_csrf",
]

SESSION_COOKIE = "rs_session"
HTTPS_SESSION_COOKIE = "__Host-rs_session"
LOGIN_CSRF_COOKIE = "rs_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_ONLY = "admin only: sign in with the password (a magic-link session is an operator)"


# -- cookies -----------------------------------------------------------------------
def session_cookie(request: Request) -> str:
    """The session cookie's name on this request's scheme."""
    return HTTPS_SESSION_COOKIE if is_https(request) else SESSION_COOKIE


def session_id_of(request: Request) -> str:
    """The session id the browser sent ("" without one)."""
    return request.cookies.get(session_cookie(request), "")


def set_session_cookie(request: Request, response: Response, session_id: str, max_age: int) -> None:
    response.set_cookie(
        session_cookie(request),
        session_id,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        session_cookie(request),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


# -- origin and tokens ---------------------------------------------------------------
def same_origin(request: Request, *, allow_null_origin: bool = False) -> bool:
    """False for requests a browser marks cross-site or whose Origin is another host.

    ``allow_null_origin``: pages served with ``Referrer-Policy: no-referrer`` (the
    magic-link landing) make browsers send ``Origin: null`` on their own form
    POSTs; those forms are protected by the signed double-submit token and
    Sec-Fetch-Site, so ``null`` is accepted there only.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return True  # non-browser client: the token check still applies
        origin = referer
    if origin == "null":
        return allow_null_origin
    allowed = {request.headers.get("host", "").lower()}
    base = context(request).settings.public_base_url
    if base:
        allowed.add(urlsplit(base).netloc.lower())
    return urlsplit(origin).netloc.lower() in allowed


async def _submitted_token(request: Request) -> str:
    header = request.headers.get("x-csrf-token") or request.headers.get("x-csrftoken")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


def _login_csrf_secret(request: Request) -> bytes:
    return f"login-csrf:{context(request).settings.secret_key}".encode()


def _sign_nonce(request: Request, nonce: str) -> str:
    return hmac.new(_login_csrf_secret(request), nonce.encode(), hashlib.sha256).hexdigest()


def issue_login_csrf(request: Request, response: Response) -> str:
    """The form token for a pre-session form; sets the nonce cookie when needed."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (16 <= len(nonce) <= 128):
        nonce = secrets.token_urlsafe(32)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return _sign_nonce(request, nonce)


def verify_login_csrf(request: Request, submitted: str) -> bool:
    """Signed double-submit check for the login and magic-link forms."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not nonce or not submitted or not same_origin(request, allow_null_origin=True):
        return False
    return hmac.compare_digest(_sign_nonce(request, nonce), submitted)


# -- dependencies --------------------------------------------------------------------
async def optional_session(request: Request) -> SessionData | None:
    """The caller's session, or None (cached on the request)."""
    if hasattr(request.state, "session"):
        cached: SessionData | None = request.state.session
        return cached
    session_id = session_id_of(request)
    data = await context(request).sessions.load(session_id) if session_id else None
    request.state.session = data
    request.state.session_id = session_id if data else None
    return data


async def require_session(request: Request) -> SessionData:
    """API routes: 401 JSON ``{success: false, message}`` without a live session."""
    data = await optional_session(request)
    if data is None:
        raise ApiError(401, "Authentication required")
    return data


async def require_page_session(request: Request) -> SessionData:
    """HTML routes: 303 to ``/login?next=<this page>`` without a live session."""
    data = await optional_session(request)
    if data is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PageRedirect(f"/login?next={quote(target, safe='')}")
    return data


async def require_password_session(
    session: Annotated[SessionData, Depends(require_session)],
) -> SessionData:
    """Routes a magic link must never reach (deploy): 403 for magic-link sessions."""
    if session.kind != "password":
        raise ApiError(403, "This action requires a password login")
    return session


async def csrf_protect(
    request: Request, session: Annotated[SessionData, Depends(require_session)]
) -> SessionData:
    """State-changing routes: same-origin and a matching CSRF token, else 403."""
    if request.method in SAFE_METHODS:
        return session
    if not same_origin(request):
        raise ApiError(403, "Cross-site request refused")
    submitted = await _submitted_token(request)
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise ApiError(403, "CSRF token missing or invalid")
    return session


def require_admin_for(session: SessionData, what: str = "") -> None:
    """403 unless ``session`` is an admin; ``what`` names the refused part."""
    if session.role != "admin":
        raise ApiError(403, f"{what}: {ADMIN_ONLY}" if what else ADMIN_ONLY.capitalize())


async def require_admin(
    session: Annotated[SessionData, Depends(csrf_protect)],
) -> SessionData:
    """Admin routes: a password session (CSRF-checked on state changes), else 403."""
    require_admin_for(session)
    return session


Session = Annotated[SessionData, Depends(require_session)]
PageSession = Annotated[SessionData, Depends(require_page_session)]
CsrfSession = Annotated[SessionData, Depends(csrf_protect)]
PasswordSession = Annotated[SessionData, Depends(require_password_session)]
#: Any role; state changes CSRF-checked (view and operate).
OperatorSession = CsrfSession
#: Password sessions only (configuration, links, import/export, deploy).
AdminSession = Annotated[SessionData, Depends(require_admin)]


def session_summary(data: SessionData) -> dict[str, Any]:
    """What the UI may show about the session (never the id)."""
    return {"user": data.user, "kind": data.kind, "role": data.role, "created_at": data.created_at}
