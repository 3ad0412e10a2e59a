"""Configuration export/import, and the one-shot import of the original's JSON files.

Export is UNMASKED (the original masked the webhook URL, so its exports could
not be re-imported); it is a secret-bearing file, served only to a session.
Import validates every document like the individual APIs and writes nothing
unless all are valid.

Legacy import maps the original's files onto our documents and reports, per
file, what was imported and what was skipped and why.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from render_signal.common.configstore import ConfigStore
from render_signal.gateway.configapi import save_document
from render_signal.gateway.errors import ApiError
from render_signal.gateway.linkfile import merge_links
from render_signal.gateway.sessions import CsrfSession, Session
from render_signal.gateway.timeutil import iso, to_epoch
from render_signal.gateway.validation import (
    LEGACY_WEBHOOK_KEYS,
    ConfigInvalid,
    validate_polling,
    validate_prefs,
    validate_routing_rules,
    validate_runtime_flags,
    validate_webhook_config,
)

__all__ = ["DOCUMENTS", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["config"])

DOCUMENTS = (
    "webhook_config",
    "routing_rules",
    "polling_config",
    "runtime_flags",
    "processing_prefs",
)
MAX_FILE_BYTES = 5 * 1024 * 1024
MAGIC_NOT_IMPORTED = (
    "not imported: the original stored raw token ids, while render-signal stores only "
    "SHA-256 hashes of new 256-bit tokens, so old links cannot be carried over; "
    "create new magic links from the dashboard"
)


def _validate(name: str, data: Any, *, dev_mode: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigInvalid(f"{name}: an object is expected")
    body = {k: v for k, v in data.items() if k not in ("_updated_at", "_version")}
    if name == "webhook_config":
        return validate_webhook_config(body, {}, dev_mode=dev_mode)
    if name == "routing_rules":
        return validate_routing_rules(body, dev_mode=dev_mode)
    if name == "polling_config":
        return validate_polling(body, {})
    if name == "runtime_flags":
        return validate_runtime_flags(body, {})
    return validate_prefs(body, {})


@router.get("/api/config/export")
async def export_config(request: Request, session: Session) -> dict[str, Any]:
    """Every document, unmasked, with ``_version`` and ``_updated_at``."""
    store: ConfigStore = request.app.state.config_store
    documents = {name: (await store.get(name)).as_api() for name in DOCUMENTS}
    logger.info("CONFIG: exported by user %s", session.user[:1] + "***")
    return {"success": True, "exported_at": iso(time.time()), "documents": documents}


@router.post("/api/config/import")
async def import_config(
    request: Request, session: CsrfSession, payload: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """``{documents: {name: {...}}}`` (the export's shape); all valid or nothing written."""
    documents = payload.get("documents")
    if not isinstance(documents, dict) or not documents:
        raise ApiError(400, "documents must be a non-empty object")
    unknown = sorted(set(documents) - set(DOCUMENTS))
    if unknown:
        raise ApiError(400, f"Unknown documents: {', '.join(map(str, unknown))}")
    dev = bool(request.app.state.settings.common.dev_mode)
    try:
        clean = {name: _validate(name, data, dev_mode=dev) for name, data in documents.items()}
    except ConfigInvalid as exc:
        raise ApiError(400, str(exc)) from exc
    store: ConfigStore = request.app.state.config_store
    for name, data in clean.items():
        await store.put(name, data)
    logger.info("CONFIG: imported %s", ", ".join(clean))
    return {"success": True, "imported": sorted(clean)}


# -- legacy files ----------------------------------------------------------------------
def _per_key(
    data: dict[str, Any], build: Any, current: dict[str, Any], report: dict[str, Any]
) -> dict[str, Any]:
    """Apply keys one by one so one bad value skips only itself."""
    doc = dict(current)
    for key, value in data.items():
        try:
            doc = build({key: value}, doc)
            report["imported"].append(key)
        except ConfigInvalid as exc:
            report["skipped"].append({"key": key, "reason": str(exc)})
    return doc


async def _import_webhook_config(
    request: Request, data: dict[str, Any], report: dict[str, Any]
) -> None:
    dev = bool(request.app.state.settings.common.dev_mode)
    for key in sorted(set(data) & LEGACY_WEBHOOK_KEYS):
        reason = (
            "the legacy 'global' window was never enforced; the single window is "
            "webhook_time_start/end"
            if key.startswith("global_time")
            else "obsolete key dropped"
        )
        report["skipped"].append({"key": key, "reason": reason})
    fields = {
        k: v for k, v in data.items() if k not in LEGACY_WEBHOOK_KEYS and not k.startswith("_")
    }
    window = {k: fields.pop(k) for k in ("webhook_time_start", "webhook_time_end") if k in fields}
    absence = {
        k: fields.pop(k) for k in ("absence_pause_enabled", "absence_pause_days") if k in fields
    }

    def build(current: dict[str, Any]) -> dict[str, Any]:
        def one(change: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
            return validate_webhook_config(change, doc, dev_mode=dev)

        doc = _per_key(fields, one, current, report)
        for group in (window, absence):
            if group:
                try:
                    doc = validate_webhook_config(group, doc, dev_mode=dev)
                    report["imported"].extend(group)
                except ConfigInvalid as exc:
                    report["skipped"].append({"key": ",".join(group), "reason": str(exc)})
        return doc

    await save_document(request.app.state.config_store, "webhook_config", build)


async def _import_simple(
    request: Request, name: str, data: dict[str, Any], report: dict[str, Any]
) -> None:
    validators = {
        "processing_prefs": validate_prefs,
        "runtime_flags": validate_runtime_flags,
        "polling_config": validate_polling,
    }
    validator = validators[name]
    fields = {k: v for k, v in data.items() if not k.startswith("_")}
    if name == "runtime_flags":
        for key in sorted(
            set(fields)
            - {
                "disable_email_id_dedup",
                "allow_custom_webhook_without_links",
                "gmail_ingress_enabled",
            }
        ):
            report["skipped"].append({"key": key, "reason": "unknown flag"})

    def build(current: dict[str, Any]) -> dict[str, Any]:
        return _per_key(fields, lambda change, doc: validator(change, doc), current, report)

    await save_document(request.app.state.config_store, name, build)


async def _import_links(request: Request, data: Any, report: dict[str, Any]) -> None:
    items = data if isinstance(data, list) else []
    entries: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        source, r2 = item.get("source_url"), item.get("r2_url")
        if not isinstance(source, str) or not source or not isinstance(r2, str) or not r2:
            report["skipped"].append(
                {"key": str(source)[:80], "reason": "missing source or r2 url"}
            )
            continue
        created = to_epoch(item.get("created_at")) or time.time()
        entry: dict[str, Any] = {
            "source_url": source,
            "r2_url": r2,
            "provider": str(item.get("provider") or ""),
            "created_at": iso(created),
        }
        if item.get("original_filename"):
            entry["original_filename"] = str(item["original_filename"])
        entries.append(entry)
    if not entries:
        return
    prefix = request.app.state.settings.common.key_prefix
    redis = request.app.state.redis
    async with redis.pipeline(transaction=True) as pipe:
        for entry in entries:
            created = to_epoch(entry["created_at"]) or time.time()
            record = {
                "r2_url": entry["r2_url"],
                "original_filename": entry.get("original_filename"),
                "provider": entry["provider"],
                "created_at": created,
            }
            pipe.hset(f"{prefix}offload:links", entry["source_url"], json.dumps(record))
            pipe.zadd(f"{prefix}offload:links:index", {entry["source_url"]: created})
        await pipe.execute()
    merge_links(Path(request.app.state.settings.webhook_links_file), entries)
    report["imported"].append(f"{len(entries)} links")


async def _import_file(request: Request, filename: str, content: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"status": "imported", "imported": [], "skipped": []}
    base = Path(filename).name
    if base == "magic_link_tokens.json":
        return {"status": "not_imported", "reason": MAGIC_NOT_IMPORTED}
    if base == "webhook_time_window.json":
        return {
            "status": "not_imported",
            "reason": "the legacy 'global' window was never enforced; set the single window",
        }
    if isinstance(content, bytes | str):
        if len(content) > MAX_FILE_BYTES:
            return {"status": "error", "reason": "file too large"}
        try:
            content = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            return {"status": "error", "reason": "not valid JSON"}
    name = base.removesuffix(".json")
    if name == "webhook_links":
        await _import_links(request, content, report)
        return report
    if not isinstance(content, dict):
        return {"status": "error", "reason": "a JSON object is expected"}
    try:
        if name == "webhook_config":
            await _import_webhook_config(request, content, report)
        elif name in ("processing_prefs", "runtime_flags", "polling_config"):
            await _import_simple(request, name, content, report)
        elif name == "routing_rules":
            dev = bool(request.app.state.settings.common.dev_mode)
            doc = validate_routing_rules(content, dev_mode=dev)
            await request.app.state.config_store.put("routing_rules", doc)
            report["imported"].append(f"{len(doc['rules'])} rules")
        else:
            return {"status": "skipped", "reason": "unknown file"}
    except ConfigInvalid as exc:
        return {"status": "error", "reason": str(exc)}
    except ApiError as exc:
        return {"status": "error", "reason": exc.message}
    return report


@router.post(
    "/api/config/import_legacy",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"files": {"type": "object"}},
                        "required": ["files"],
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
            }
        }
    },
)
async def import_legacy(request: Request, session: CsrfSession) -> dict[str, Any]:
    """The original's JSON files (multipart upload or ``{files: {name: content}}``)."""
    files: dict[str, Any] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        for _, value in form.multi_items():
            if not isinstance(value, str) and value.filename:
                files[value.filename] = await value.read(MAX_FILE_BYTES + 1)
    else:
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Invalid JSON payload") from exc
        raw_files = payload.get("files") if isinstance(payload, dict) else None
        if not isinstance(raw_files, dict):
            raise ApiError(400, "files must be an object {filename: content}")
        files = {str(k): v for k, v in raw_files.items()}
    if not files:
        raise ApiError(400, "No files to import")
    results = {name: await _import_file(request, name, content) for name, content in files.items()}
    logger.info("CONFIG: legacy import of %d files", len(results))
    return {"success": True, "files": results}
