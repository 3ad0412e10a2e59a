"""Configuration APIs: each runtime-config document read and written through its struct.

A write decodes the merged document into the struct the services read
(``configdocs.apply_changes``): an invalid or unknown field is a 400 naming
it, and nothing the API accepts can be dropped on the way. Target URLs the
write adds are then checked against the outbound policy of this mode, their
names resolved (``urls.url_problem``: every address must be public; a URL
already stored is not re-judged, so toggling a switch never fails on it; the
connect-time check still applies to it). The config store bumps
the version and notifies every service, so changes apply without a restart.
There is ONE time window (``webhook_config.webhook_time_start/end``); the
original's ``get/set_webhook_time_window`` routes read and write it too.

Who may write: reads need any session; writes need an admin (a password
session), except what an operator (magic link) runs day to day: the time
window, Absence Globale and the sending switch, through their own routes or
``POST /api/webhooks/config`` restricted to :data:`OPERATOR_FIELDS`.

Slightly over 300 lines: every write path of the runtime documents (and the
target check they share with :mod:`.configtransfer`) stays in one place, so a
rule about who may write what can't be applied on one route and missed on
another.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
from fastapi import APIRouter, Request
from render_signal.common.appliedconfig import read_applied
from render_signal.common.configdocs import (
    ConfigDoc,
    MakeConfig,
    PollingConfig,
    ProcessingPrefs,
    RoutingRules,
    RuntimeFlags,
    WebhookConfig,
    apply_changes,
)
from render_signal.common.configstore import Versioned
from render_signal.common.errors import ConfigConflict, ConfigInvalid
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.urls import url_problem
from render_signal.gateway.configviews import build_view, envelope_type
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import AdminSession, OperatorSession, Session, require_admin_for
from render_signal.gateway.openapi import MsgspecResponse, body, read_json_object, returns

__all__ = ["OPERATOR_FIELDS", "check_targets", "router", "save_changes"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["config"])

#: The webhook_config fields an operator (magic-link session) may change.
OPERATOR_FIELDS = frozenset(
    {
        "webhook_sending_enabled",
        "webhook_time_start",
        "webhook_time_end",
        "absence_pause_enabled",
        "absence_pause_days",
    }
)
_META_FIELDS = frozenset({"_updated_at", "_version"})


async def check_targets(
    doc: ConfigDoc, policy: OutboundPolicy, before: ConfigDoc | None = None
) -> ConfigDoc:
    """Refuse ``doc`` when a target URL it adds to ``before`` may not be called.

    Raises:
        ConfigInvalid: naming the field and why (e.g. the address it resolves to).
    """
    known = {url for _, url in before.target_urls()} if before is not None else set()
    for path, url in doc.target_urls():
        if url in known:
            continue
        problem = await url_problem(url, policy)
        if problem:
            raise ConfigInvalid(f"{path}: {problem}")
    return doc


async def save_changes(
    ctx: Context, doc_type: type[ConfigDoc], changes: Mapping[str, object]
) -> Versioned[ConfigDoc]:
    """Validate ``changes`` against the current document and write it (400/409 on failure)."""
    try:
        current = (await ctx.store.read(doc_type)).doc
        # DNS is async and the store's update callback is not: the URLs this write
        # adds are checked first (they are the same whatever a concurrent writer did).
        await check_targets(apply_changes(doc_type, current, changes), ctx.outbound, current)
        saved: Versioned[ConfigDoc] = await ctx.store.update(
            doc_type, lambda latest: apply_changes(doc_type, latest, changes)
        )
    except ConfigInvalid as exc:
        raise ApiError(400, str(exc)) from exc
    except ConfigConflict as exc:
        raise ApiError(409, "Configuration changed concurrently; retry") from exc
    logger.info("CONFIG: %s saved (version %d)", doc_type.NAME, saved.version)
    return saved


async def _answer(
    ctx: Context,
    doc_type: type[ConfigDoc],
    key: str,
    versioned: Versioned[ConfigDoc] | None = None,
    message: str | None = None,
) -> MsgspecResponse:
    if versioned is None:
        versioned = await ctx.store.read(doc_type)
    view = build_view(versioned, await read_applied(ctx.redis, ctx.keys))
    return MsgspecResponse(
        envelope_type(doc_type, key)(success=True, message=message, **{key: view})
    )


def _document_routes(
    doc_type: type[ConfigDoc],
    paths: tuple[str, ...],
    key: str,
    summary: str,
    operator_fields: frozenset[str] = frozenset(),
) -> None:
    """GET (the view) and POST (a partial update) of one document, on each path.

    POST needs an admin, or any session when every field sent is in ``operator_fields``.
    """

    async def read(ctx: Context, session: Session) -> MsgspecResponse:
        return await _answer(ctx, doc_type, key)

    async def write_admin(ctx: Context, session: AdminSession, request: Request) -> MsgspecResponse:
        saved = await save_changes(ctx, doc_type, await read_json_object(request))
        return await _answer(ctx, doc_type, key, saved, f"{doc_type.NAME} updated.")

    async def write_mixed(
        ctx: Context, session: OperatorSession, request: Request
    ) -> MsgspecResponse:
        changes = await read_json_object(request)
        admin_fields = sorted(set(changes) - operator_fields - _META_FIELDS)
        if admin_fields:
            require_admin_for(session, ", ".join(admin_fields))
        saved = await save_changes(ctx, doc_type, changes)
        return await _answer(ctx, doc_type, key, saved, f"{doc_type.NAME} updated.")

    write = write_mixed if operator_fields else write_admin
    for path in paths:
        router.add_api_route(
            path,
            read,
            methods=["GET"],
            summary=f"Read {summary}",
            responses=returns(envelope_type(doc_type, key)),
        )
        router.add_api_route(
            path,
            write,
            methods=["POST"],
            summary=f"Update {summary} (partial: the fields sent)",
            responses=returns(envelope_type(doc_type, key)),
            openapi_extra=body(doc_type),
        )


_document_routes(
    WebhookConfig,
    ("/api/webhooks/config",),
    "config",
    "the webhook settings (operators: only the sending switch, window and absence fields)",
    OPERATOR_FIELDS,
)
_document_routes(
    PollingConfig,
    ("/api/polling_config", "/api/get_polling_config", "/api/update_polling_config"),
    "config",
    "the IMAP polling schedule",
)
_document_routes(
    RuntimeFlags,
    ("/api/runtime_flags", "/api/get_runtime_flags", "/api/update_runtime_flags"),
    "flags",
    "the runtime flags",
)
_document_routes(
    ProcessingPrefs,
    ("/api/processing_prefs", "/api/get_processing_prefs", "/api/update_processing_prefs"),
    "prefs",
    "the processing preferences",
)
_document_routes(MakeConfig, ("/api/make_config",), "config", "the Make.com scenarios")


# -- routing rules: the whole list is replaced ---------------------------------------------
@router.get("/api/routing_rules", responses=returns(envelope_type(RoutingRules, "config")))
async def get_routing_rules(ctx: Context, session: Session) -> MsgspecResponse:
    """The routing rules (the first enabled rule whose conditions all match wins)."""
    return await _answer(ctx, RoutingRules, "config")


@router.post(
    "/api/routing_rules",
    responses=returns(envelope_type(RoutingRules, "config")),
    openapi_extra=body(RoutingRules),
)
async def set_routing_rules(
    ctx: Context, session: AdminSession, request: Request
) -> MsgspecResponse:
    """``{rules: [...], locked?}``: replace every rule (regexes in re2, https targets)."""
    payload = await read_json_object(request)
    if "rules" not in payload:
        raise ApiError(400, "rules: required (the full list of rules)")
    saved = await save_changes(ctx, RoutingRules, payload)
    return await _answer(ctx, RoutingRules, "config", saved, "Rules updated.")


# -- the one time window -------------------------------------------------------------------
class TimeWindow(msgspec.Struct, kw_only=True):
    """The delivery window in force (``HH:MM``; null when none)."""

    success: bool
    webhooks_time_start: str | None
    webhooks_time_end: str | None
    timezone: str
    source: str
    message: str | None = None


async def _window(ctx: Context, message: str | None = None) -> MsgspecResponse:
    view = build_view(await ctx.store.read(WebhookConfig), await read_applied(ctx.redis, ctx.keys))
    values = msgspec.to_builtins(view)
    return MsgspecResponse(
        TimeWindow(
            success=True,
            webhooks_time_start=values.get("webhook_time_start"),
            webhooks_time_end=values.get("webhook_time_end"),
            timezone=ctx.settings.common.timezone,
            source=values["_sources"]["webhook_time_start"],
            message=message,
        )
    )


@router.get("/api/webhooks/time-window", responses=returns(TimeWindow))
@router.get("/api/get_webhook_time_window", responses=returns(TimeWindow))
async def get_time_window(ctx: Context, session: Session) -> MsgspecResponse:
    """The delivery time window. Both paths, one window."""
    return await _window(ctx)


class WindowChange(msgspec.Struct, kw_only=True):
    """``{start, end}`` (or ``webhook_time_start``/``_end``): both or neither; both empty
    clears the window (no window, whatever the environment says)."""

    start: str | None = None
    end: str | None = None


@router.post(
    "/api/webhooks/time-window", responses=returns(TimeWindow), openapi_extra=body(WindowChange)
)
@router.post(
    "/api/set_webhook_time_window", responses=returns(TimeWindow), openapi_extra=body(WindowChange)
)
async def set_time_window(
    ctx: Context, session: OperatorSession, request: Request
) -> MsgspecResponse:
    """Set or clear the window (HH:MM or HHhMM)."""
    payload = await read_json_object(request)
    names = (
        ("start", "end")
        if "start" in payload or "end" in payload
        else (
            "webhook_time_start",
            "webhook_time_end",
        )
    )
    start, end = (payload.get(name) for name in names)
    blank = [value is None or value == "" for value in (start, end)]
    if blank == [True, True]:
        changes: dict[str, object] = {"webhook_time_start": None, "webhook_time_end": None}
    elif True in blank:
        raise ApiError(400, "start, end: both are required (or both empty to clear)")
    else:
        changes = {"webhook_time_start": start, "webhook_time_end": end}
    await save_changes(ctx, WebhookConfig, changes)
    cleared = blank == [True, True]
    return await _window(ctx, "Time window cleared." if cleared else "Time window updated.")


# -- absence ---------------------------------------------------------------------------------
class Absence(msgspec.Struct, kw_only=True):
    """Absence Globale: no webhook at all on the listed days."""

    success: bool
    absence_pause_enabled: bool
    absence_pause_days: list[str]
    message: str | None = None


def _absence(doc: WebhookConfig, message: str | None = None) -> MsgspecResponse:
    return MsgspecResponse(
        Absence(
            success=True,
            absence_pause_enabled=doc.absence_pause_enabled,
            absence_pause_days=doc.absence_pause_days,
            message=message,
        )
    )


@router.get("/api/absence", responses=returns(Absence))
async def get_absence(ctx: Context, session: Session) -> MsgspecResponse:
    """Absence Globale settings."""
    return _absence((await ctx.store.read(WebhookConfig)).doc)


@router.post("/api/absence", responses=returns(Absence), openapi_extra=body(WebhookConfig))
async def set_absence(ctx: Context, session: OperatorSession, request: Request) -> MsgspecResponse:
    """``{absence_pause_enabled, absence_pause_days}``; enabling requires a day."""
    payload = await read_json_object(request)
    allowed = {"absence_pause_enabled", "absence_pause_days"}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field")
    saved = await save_changes(ctx, WebhookConfig, payload)
    assert isinstance(saved.doc, WebhookConfig)
    return _absence(saved.doc, "Absence settings updated.")
