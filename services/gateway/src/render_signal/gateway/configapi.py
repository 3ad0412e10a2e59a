"""Configuration APIs: read and validated writes of the config store documents.

Writes go through :class:`~render_signal.common.configstore.ConfigStore`, which
bumps the version and notifies every service, so changes apply without a
restart. There is ONE time window (``webhook_config.webhook_time_start/end``);
the legacy ``get/set_webhook_time_window`` routes read and write it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from render_signal.common.configstore import ConfigConflict, ConfigDocument, ConfigStore
from render_signal.common.logs import mask_url
from render_signal.gateway.errors import ApiError
from render_signal.gateway.sessions import CsrfSession, Session
from render_signal.gateway.validation import (
    DEFAULT_PREFS,
    DEFAULT_RUNTIME_FLAGS,
    ConfigInvalid,
    validate_absence,
    validate_polling,
    validate_prefs,
    validate_routing_rules,
    validate_runtime_flags,
    validate_time_window,
    validate_webhook_config,
)

__all__ = ["router", "save_document"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["config"])

JsonBody = Annotated[dict[str, Any], Body()]

WEBHOOK_DEFAULTS: dict[str, Any] = {
    "webhook_ssl_verify": True,
    "webhook_sending_enabled": True,
    "webhook_delivery_mode": "json",
    "webhook_fallback_on_415": True,
    "webhook_time_start": None,
    "webhook_time_end": None,
    "absence_pause_enabled": False,
    "absence_pause_days": [],
}
# What ingest applies when a key is absent (render_signal.ingest.schedule): shown as is.
POLLING_DEFAULTS: dict[str, Any] = {
    "active_days": [0, 1, 2, 3, 4, 5, 6],
    "active_start_hour": 0,
    "active_end_hour": 24,
    "enable_subject_group_dedup": False,
    "sender_of_interest_for_polling": [],
    "vacation_start": None,
    "vacation_end": None,
    "enable_polling": True,
}


def _store(request: Request) -> ConfigStore:
    store: ConfigStore = request.app.state.config_store
    return store


def _dev(request: Request) -> bool:
    return bool(request.app.state.settings.common.dev_mode)


async def save_document(
    store: ConfigStore, name: str, build: Callable[[dict[str, Any]], dict[str, Any]]
) -> ConfigDocument:
    """Validate against the current document and write (optimistic, retried on races)."""
    for _ in range(5):
        current = await store.get(name)
        try:
            data = build(dict(current.data))
        except ConfigInvalid as exc:
            raise ApiError(400, str(exc)) from exc
        try:
            doc = await store.put(name, data, expected_version=current.version)
        except ConfigConflict:
            continue
        logger.info("CONFIG: %s saved (version %d)", name, doc.version)
        return doc
    raise ApiError(409, "Configuration changed concurrently; retry")


# -- webhook config ------------------------------------------------------------------
def _webhook_view(doc: ConfigDocument, *, masked: bool) -> dict[str, Any]:
    view = {**WEBHOOK_DEFAULTS, **doc.as_api()}
    url = view.get("webhook_url")
    view["webhook_url"] = (mask_url(url) if masked else url) if url else None
    return view


@router.get("/api/webhooks/config")
async def get_webhook_config(request: Request, session: Session) -> dict[str, Any]:
    """The webhook settings; the URL is masked ``scheme://host/***`` (it is a secret)."""
    doc = await _store(request).get("webhook_config")
    return {"success": True, "config": _webhook_view(doc, masked=True)}


@router.post("/api/webhooks/config")
async def set_webhook_config(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """Partial update: URL (https, no placeholder), flags, mode, window, absence."""
    dev = _dev(request)
    doc = await save_document(
        _store(request),
        "webhook_config",
        lambda current: validate_webhook_config(payload, current, dev_mode=dev),
    )
    return {
        "success": True,
        "message": "Configuration updated.",
        "config": _webhook_view(doc, masked=True),
    }


# -- the one time window -------------------------------------------------------------
def _window(request: Request, doc: ConfigDocument) -> dict[str, Any]:
    return {
        "success": True,
        "webhooks_time_start": doc.data.get("webhook_time_start") or None,
        "webhooks_time_end": doc.data.get("webhook_time_end") or None,
        "timezone": request.app.state.settings.common.timezone,
    }


@router.get("/api/webhooks/time-window")
@router.get("/api/get_webhook_time_window")
async def get_time_window(request: Request, session: Session) -> dict[str, Any]:
    """The delivery time window (``HH:MM``; null when not set). Both paths, one window."""
    return _window(request, await _store(request).get("webhook_config"))


@router.post("/api/webhooks/time-window")
@router.post("/api/set_webhook_time_window")
async def set_time_window(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """``{start, end}``: HH:MM or HHhMM, both or neither (both empty clears)."""
    start, end = (
        (payload.get("start"), payload.get("end"))
        if "start" in payload or "end" in payload
        else (payload.get("webhook_time_start"), payload.get("webhook_time_end"))
    )

    def build(current: dict[str, Any]) -> dict[str, Any]:
        s, e = validate_time_window(start, end)
        return {**current, "webhook_time_start": s, "webhook_time_end": e}

    doc = await save_document(_store(request), "webhook_config", build)
    result = _window(request, doc)
    cleared = result["webhooks_time_start"] is None
    result["message"] = "Time window cleared." if cleared else "Time window updated."
    return result


# -- absence ---------------------------------------------------------------------------
def _absence(doc: ConfigDocument) -> dict[str, Any]:
    return {
        "success": True,
        "absence_pause_enabled": bool(doc.data.get("absence_pause_enabled", False)),
        "absence_pause_days": list(doc.data.get("absence_pause_days") or []),
    }


@router.get("/api/absence")
async def get_absence(request: Request, session: Session) -> dict[str, Any]:
    """Absence Globale: no webhook at all on the listed days."""
    return _absence(await _store(request).get("webhook_config"))


@router.post("/api/absence")
async def set_absence(request: Request, session: CsrfSession, payload: JsonBody) -> dict[str, Any]:
    """``{absence_pause_enabled, absence_pause_days}``; enabling requires a day."""
    doc = await save_document(
        _store(request),
        "webhook_config",
        lambda current: {**current, **validate_absence(payload, current)},
    )
    return {**_absence(doc), "message": "Absence settings updated."}


# -- routing rules ---------------------------------------------------------------------
def _rules_view(doc: ConfigDocument) -> dict[str, Any]:
    return {
        "rules": list(doc.data.get("rules") or []),
        "locked": bool(doc.data.get("locked", True)),
        "_updated_at": doc.updated_at,
        "_version": doc.version,
    }


@router.get("/api/routing_rules")
async def get_routing_rules(request: Request, session: Session) -> dict[str, Any]:
    """The routing rules (first matching rule wins)."""
    return {"success": True, "config": _rules_view(await _store(request).get("routing_rules"))}


@router.post("/api/routing_rules")
async def set_routing_rules(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """Replace all rules; validated in full (regexes with re2, https targets)."""
    dev = _dev(request)

    def build(current: dict[str, Any]) -> dict[str, Any]:
        doc = validate_routing_rules(payload, dev_mode=dev)
        doc.setdefault("locked", current.get("locked", True))
        return doc

    doc = await save_document(_store(request), "routing_rules", build)
    return {"success": True, "message": "Rules updated.", "config": _rules_view(doc)}


# -- polling ---------------------------------------------------------------------------
@router.get("/api/polling_config")
@router.get("/api/get_polling_config")
async def get_polling_config(request: Request, session: Session) -> dict[str, Any]:
    """The IMAP polling schedule (``get_polling_config`` is the original's name)."""
    doc = await _store(request).get("polling_config")
    config = {**POLLING_DEFAULTS, **doc.as_api()}
    config["timezone"] = request.app.state.settings.common.timezone
    return {"success": True, "config": config}


@router.post("/api/polling_config")
@router.post("/api/update_polling_config")
async def set_polling_config(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """Partial update of the polling schedule."""
    await save_document(
        _store(request), "polling_config", lambda current: validate_polling(payload, current)
    )
    return {
        **await get_polling_config(request, session),
        "message": "Polling configuration updated.",
    }


# -- runtime flags ---------------------------------------------------------------------
@router.get("/api/runtime_flags")
@router.get("/api/get_runtime_flags")
async def get_runtime_flags(request: Request, session: Session) -> dict[str, Any]:
    """Runtime flags (booleans); ``get_runtime_flags`` is the original's name."""
    doc = await _store(request).get("runtime_flags")
    flags = {k: bool(doc.data.get(k, v)) for k, v in DEFAULT_RUNTIME_FLAGS.items()}
    return {"success": True, "flags": flags}


@router.post("/api/runtime_flags")
@router.post("/api/update_runtime_flags")
async def set_runtime_flags(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """Partial update of the runtime flags (applied live, no restart)."""
    await save_document(
        _store(request), "runtime_flags", lambda current: validate_runtime_flags(payload, current)
    )
    flags = await get_runtime_flags(request, session)
    return {**flags, "message": "Runtime flags updated (applied live)."}


# -- processing prefs ------------------------------------------------------------------
@router.get("/api/processing_prefs")
@router.get("/api/get_processing_prefs")
async def get_processing_prefs(request: Request, session: Session) -> dict[str, Any]:
    """Processing preferences, defaults merged (both the new and the original path)."""
    doc = await _store(request).get("processing_prefs")
    return {"success": True, "prefs": {**DEFAULT_PREFS, **doc.as_api()}}


@router.post("/api/processing_prefs")
@router.post("/api/update_processing_prefs")
async def set_processing_prefs(
    request: Request, session: CsrfSession, payload: JsonBody
) -> dict[str, Any]:
    """Partial update with the original's bounds."""
    await save_document(
        _store(request), "processing_prefs", lambda current: validate_prefs(payload, current)
    )
    prefs = await get_processing_prefs(request, session)
    return {**prefs, "message": "Processing preferences updated."}
