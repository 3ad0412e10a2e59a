"""Configuration export/import, and the one-shot import of the original's JSON files.

Export is UNMASKED (the original masked the webhook URL, so its exports could
not be re-imported); it is a secret-bearing file, served only to an admin
(password session) with ``Cache-Control: no-store``. Imports are admin-only too.
Import validates every document with its struct, like the individual APIs,
and writes nothing unless all are valid.

Legacy import maps the original's files onto our documents key by key and
reports, per file, what was imported and what was skipped and why (a key the
original stored but nothing here applies is named with the reason).

Slightly over 300 lines: the legacy mapping tables are data; the routes and
their checks are the same concept (whole-config transfer) and read together.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from render_signal.common.configdocs import (
    BY_NAME,
    DOCUMENTS,
    ConfigDoc,
    PollingConfig,
    ProcessingPrefs,
    RoutingRules,
    WebhookConfig,
    apply_changes,
    to_stored,
)
from render_signal.common.errors import ConfigInvalid
from render_signal.common.linkjournal import LinkJournal, LinkRecord, LinksFile, check_imported
from render_signal.common.timefmt import iso
from render_signal.common.urls import url_problem
from render_signal.gateway.configapi import check_targets, save_changes
from render_signal.gateway.context import Context
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import AdminSession
from render_signal.gateway.openapi import read_json_object

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["config"])

MAX_FILE_BYTES = 5 * 1024 * 1024
MAGIC_NOT_IMPORTED = (
    "not imported: the original stored raw token ids, while render-signal stores only "
    "SHA-256 hashes of new 256-bit tokens, so old links cannot be carried over; "
    "create new magic links from the dashboard"
)
_GLOBAL_WINDOW = (
    "the legacy 'global' window was never enforced; the single window is webhook_time_start/end"
)
_NOT_APPLIED = "stored by the original but applied by nothing; not imported (see docs/migrating.md)"
#: Keys of the original's files that are not fields here, and why.
LEGACY_KEYS: dict[str, dict[str, str]] = {
    WebhookConfig.NAME: {
        "global_time_start": _GLOBAL_WINDOW,
        "global_time_end": _GLOBAL_WINDOW,
        "recadrage_webhook_url": "obsolete key dropped (as the original did)",
        "autorepondeur_webhook_url": "obsolete key dropped (as the original did)",
        "polling_enabled": "obsolete key dropped (as the original did)",
    },
    ProcessingPrefs.NAME: {
        "require_attachments": _NOT_APPLIED,
        "max_email_size_mb": f"{_NOT_APPLIED}; MAX_EMAIL_BYTES bounds sizes",
        "sender_priority": _NOT_APPLIED,
        "notify_on_failure": _NOT_APPLIED,
        "mirror_media_to_custom": _NOT_APPLIED,
    },
    PollingConfig.NAME: {
        "enable_subject_group_dedup": f"{_NOT_APPLIED}; email ids dedupe for 30 days",
        "timezone": "POLLING_TIMEZONE (environment) sets it",
    },
}
#: Fields that are only valid together, imported as one group.
GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    WebhookConfig.NAME: (
        ("webhook_time_start", "webhook_time_end"),
        ("absence_pause_days", "absence_pause_enabled"),
    ),
}


def _stored(doc: ConfigDoc, version: int, updated_at: str | None) -> dict[str, object]:
    return {**to_stored(doc), "_version": version, "_updated_at": updated_at}


@router.get("/api/config/export")
async def export_config(ctx: Context, session: AdminSession) -> dict[str, Any]:
    """Every document, unmasked, with ``_version`` and ``_updated_at``."""
    documents: dict[str, object] = {}
    for doc_type in DOCUMENTS:
        current = await ctx.store.read(doc_type)
        documents[doc_type.NAME] = _stored(current.doc, current.version, current.updated_at)
    logger.info("CONFIG: exported by user %s", session.user[:1] + "***")
    return {"success": True, "exported_at": iso(time.time()), "documents": documents}


@router.post("/api/config/import")
async def import_config(ctx: Context, session: AdminSession, request: Request) -> dict[str, Any]:
    """``{documents: {name: {...}}}`` (the export's shape); all valid or nothing written."""
    documents = (await read_json_object(request)).get("documents")
    if not isinstance(documents, dict) or not documents:
        raise ApiError(400, "documents: a non-empty object is expected")
    unknown = sorted(set(documents) - set(BY_NAME))
    if unknown:
        raise ApiError(400, f"documents: unknown document {unknown[0]}")
    clean: list[ConfigDoc] = []
    for name, data in documents.items():
        if not isinstance(data, dict):
            raise ApiError(400, f"{name}: an object is expected")
        doc_type = BY_NAME[name]
        try:
            current = (await ctx.store.read(doc_type)).doc
            doc = apply_changes(doc_type, doc_type(), data)
            clean.append(await check_targets(doc, ctx.outbound, current))
        except ConfigInvalid as exc:
            raise ApiError(400, f"{name}.{exc}") from exc
    for doc in clean:
        await ctx.store.write(doc)
    logger.info("CONFIG: imported %s", ", ".join(d.NAME for d in clean))
    return {"success": True, "imported": sorted(d.NAME for d in clean)}


# -- legacy files ----------------------------------------------------------------------
class Report(msgspec.Struct, kw_only=True):
    status: str = "imported"
    imported: list[str] = []
    skipped: list[dict[str, str]] = []
    reason: str | None = None


def _legacy_fields(
    doc_type: type[ConfigDoc], data: dict[str, Any], report: Report
) -> list[dict[str, object]]:
    """The original's keys as change sets: legacy keys reported, groups kept together."""
    legacy = LEGACY_KEYS.get(doc_type.NAME, {})
    fields = {k: v for k, v in data.items() if not k.startswith("_")}
    for key in sorted(set(fields) & set(legacy)):
        report.skipped.append({"key": key, "reason": legacy[key]})
        fields.pop(key)
    changes: list[dict[str, object]] = []
    for group in GROUPS.get(doc_type.NAME, ()):
        together = {k: fields.pop(k) for k in group if k in fields}
        if together:
            changes.append(together)
    changes[:0] = [{key: value} for key, value in fields.items()]
    return changes


async def _refused_targets(
    ctx: Context, doc_type: type[ConfigDoc], changes: list[dict[str, object]]
) -> dict[str, str]:
    """URL -> why, for the target URLs in ``changes`` the outbound policy refuses
    (resolved here: the store's update callback below can't await)."""
    refused: dict[str, str] = {}
    for change in changes:
        try:
            alone = apply_changes(doc_type, doc_type(), change)
        except ConfigInvalid:
            continue  # build() reports it
        for path, url in alone.target_urls():
            problem = await url_problem(url, ctx.outbound)
            if problem:
                refused[url] = f"{path}: {problem}"
    return refused


async def _import_document(
    ctx: Context, doc_type: type[ConfigDoc], data: dict[str, Any], report: Report
) -> None:
    """Each key (or group) on its own: one bad value skips only itself."""
    changes = _legacy_fields(doc_type, data, report)
    refused = await _refused_targets(ctx, doc_type, changes)
    outcome = Report()

    def build(current: ConfigDoc) -> ConfigDoc:
        outcome.imported, outcome.skipped = [], []  # a retried write starts over
        doc = current
        for change in changes:
            try:
                candidate = apply_changes(doc_type, doc, change)
                known = {url for _, url in doc.target_urls()}
                for _, url in candidate.target_urls():
                    if url in refused and url not in known:
                        raise ConfigInvalid(refused[url])
                doc = candidate
                outcome.imported.extend(change)
            except ConfigInvalid as exc:
                outcome.skipped.append({"key": ",".join(change), "reason": str(exc)})
        return doc

    await ctx.store.update(doc_type, build)
    report.imported += outcome.imported
    report.skipped += outcome.skipped


async def _import_links(ctx: Context, data: Any, report: Report) -> None:
    rows = data if isinstance(data, list) else []
    settings = ctx.settings
    records: list[LinkRecord] = []
    now = time.time()
    for row in rows:
        try:
            record = msgspec.convert(row, LinkRecord)
            check_imported(record, r2_public_base=settings.r2_public_base_url, now=now)
        except (msgspec.ValidationError, ConfigInvalid) as exc:
            source = row.get("source_url") if isinstance(row, dict) else None
            report.skipped.append({"key": str(source)[:80], "reason": str(exc)})
            continue
        records.append(record)
    if not records:
        return
    journal = LinkJournal(ctx.redis, ctx.keys, max_age_s=float("inf"))
    await journal.put(records)
    links_file = LinksFile(settings.webhook_links_file, settings.links_max_entries)
    added = links_file.append(records)
    report.imported.append(f"{len(records)} links ({added} new in the file)")


async def _import_file(ctx: Context, filename: str, content: Any) -> Report:
    base = filename.rsplit("/", 1)[-1]
    if base == "magic_link_tokens.json":
        return Report(status="not_imported", reason=MAGIC_NOT_IMPORTED)
    if base == "webhook_time_window.json":
        return Report(status="not_imported", reason=_GLOBAL_WINDOW)
    if isinstance(content, bytes | str):
        if len(content) > MAX_FILE_BYTES:
            return Report(status="error", reason="file too large")
        try:
            content = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            return Report(status="error", reason="not valid JSON")
    report = Report()
    name = base.removesuffix(".json")
    if name == "webhook_links":
        await _import_links(ctx, content, report)
        return report
    if not isinstance(content, dict):
        return Report(status="error", reason="a JSON object is expected")
    doc_type = BY_NAME.get(name)
    if doc_type is None:
        return Report(status="skipped", reason="unknown file")
    if doc_type is RoutingRules:
        try:
            saved = await save_changes(ctx, RoutingRules, {"rules": content.get("rules", [])})
        except ApiError as exc:
            return Report(status="error", reason=exc.message)
        assert isinstance(saved.doc, RoutingRules)
        report.imported.append(f"{len(saved.doc.rules)} rules")
        return report
    await _import_document(ctx, doc_type, content, report)
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
async def import_legacy(ctx: Context, session: AdminSession, request: Request) -> dict[str, Any]:
    """The original's JSON files (multipart upload or ``{files: {name: content}}``)."""
    files: dict[str, Any] = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        for _, value in form.multi_items():
            if not isinstance(value, str) and value.filename:
                files[value.filename] = await value.read(MAX_FILE_BYTES + 1)
    else:
        raw_files = (await read_json_object(request)).get("files")
        if not isinstance(raw_files, dict):
            raise ApiError(400, "files: an object {filename: content} is expected")
        files = {str(k): v for k, v in raw_files.items()}
    if not files:
        raise ApiError(400, "files: no files to import")
    results = {name: await _import_file(ctx, name, content) for name, content in files.items()}
    logger.info("CONFIG: legacy import of %d files", len(results))
    return {"success": True, "files": msgspec.to_builtins(results)}
