"""The dashboard page (server-rendered with Jinja2) and its static files.

The page is a shell: forms and tables are filled by small ES modules under
``static/js`` that call the same JSON API routes an operator could script.
The CSP (``script-src 'self'``) rules out inline scripts, so everything the JS
needs from the server (CSRF token, language, strings, session kind and role)
travels in ``<meta>`` tags and ``data-*`` attributes. Controls only an admin
may use carry ``data-admin-only`` and are rendered hidden or disabled for an
operator (magic-link session); the API refuses them anyway (403).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from render_signal.gateway.guards import require_page_session
from render_signal.gateway.i18n import LANG_COOKIE, LANGUAGES, resolve_language, strings
from render_signal.gateway.sessions import SessionData

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "install", "mount_static", "router", "templates"]

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=TEMPLATES_DIR)
router = APIRouter()


def _language(request: Request, query: str | None) -> str:
    return resolve_language(
        query, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


def _remember_language(request: Request, response: Response, query: str | None) -> None:
    """An explicit ``?lang=`` choice sticks for later visits."""
    if query and query.lower() in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            query.lower(),
            max_age=LANG_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page(
    request: Request,
    session: Annotated[SessionData, Depends(require_page_session)],
    lang: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The dashboard (login required: anonymous visitors are redirected to /login)."""
    language = _language(request, lang)
    table = strings(language)
    context: dict[str, Any] = {
        "lang": language,
        "languages": LANGUAGES,
        "t": table,
        "strings_json": json.dumps(table, ensure_ascii=False),
        "user": session.user,
        "session_kind": session.kind,
        "role": session.role,
        "csrf_token": session.csrf_token,
        "weekdays": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "half_hours": [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)],
    }
    response = templates.TemplateResponse(request, "dashboard.html", context)
    response.headers["Cache-Control"] = "no-store"
    _remember_language(request, response, lang)
    return response


@router.get("/api/i18n", tags=["dashboard"])
async def i18n_strings(
    request: Request, lang: Annotated[str | None, Query(max_length=8)] = None
) -> dict[str, Any]:
    """The dashboard's string table for the requested (or negotiated) language."""
    language = _language(request, lang)
    return {"success": True, "lang": language, "strings": strings(language)}


def mount_static(app: FastAPI) -> None:
    """Serve ``static/`` (CSS and ES modules, no build step) at ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def install(app: FastAPI) -> None:
    """Add the dashboard page, the i18n route and the static files to ``app``."""
    app.include_router(router)
    mount_static(app)
