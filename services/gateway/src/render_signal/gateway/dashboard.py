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

import functools
import json
import typing
from pathlib import Path
from typing import Annotated, Any, get_args

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from render_signal.common.configdocs import DOCUMENTS
from render_signal.common.records import EmailState
from render_signal.gateway.guards import require_page_session
from render_signal.gateway.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    remember_language,
    resolve_language,
    strings,
)
from render_signal.gateway.sessions import SessionData

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "install", "mount_static", "router", "templates"]

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)
router = APIRouter()
#: The history's state filter, in the order an email goes through them.
EMAIL_STATES: tuple[str, ...] = get_args(EmailState)


@functools.cache
def config_env_variables() -> dict[str, str]:
    """``{field: ENV_VAR}`` for every config field the environment can supply.

    The page names the variable next to a value that comes from the environment
    (``WEBHOOK_URL``), so an operator knows where to change it.
    """
    found: dict[str, str] = {}
    for doc_type in DOCUMENTS:
        for name, hint in typing.get_type_hints(doc_type, include_extras=True).items():
            for meta in _metas(hint):
                env = (meta.extra or {}).get("env")
                if isinstance(env, str):
                    found[name] = env
    return found


def _metas(hint: Any) -> list[msgspec.Meta]:
    """The ``msgspec.Meta`` annotations inside ``hint`` (through unions and Annotated)."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return [e for e in extras if isinstance(e, msgspec.Meta)] + _metas(base)
    return [m for arg in typing.get_args(hint) for m in _metas(arg)]


def _language(request: Request, query: str | None) -> str:
    return resolve_language(
        query, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
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
        "email_states": EMAIL_STATES,
        "config_env_json": json.dumps(config_env_variables()),
    }
    response = templates.TemplateResponse(request, "dashboard.html", context)
    response.headers["Cache-Control"] = "no-store"
    remember_language(request, response)
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
