"""The webhook log: one Redis list ``<prefix>webhook_logs`` (newest first, 500 kept).

Importable without side effects; the gateway copies the format. Entry schema
(JSON object per list element)::

    timestamp       str   UTC ISO 8601, e.g. "2026-03-30T07:00:00.123456+00:00"
    type            str   "custom" (the original's log type)
    email_id        str   our email id (payload microsoft_graph_email_id)
    webhook_id      str   Standard Webhooks id (stable per email and target)
    target          str   masked target URL: "https://host/***"
    target_class    str   make | custom | rule
    status          str   success | error | skipped | deferred | retrying | dead_letter
    status_code     int | null   HTTP status of the attempt (204 for no-links skips)
    attempt         int   1-based attempt number (0 when no request was made)
    delivery_mode   str | null   json | form (mode of the last request)
    duration_ms     int | null
    failure_reason  str | null   bot_protection_denied, unsupported_media_type,
                                 rate_limited, upstream_server_error,
                                 upstream_client_error, remote_application_error,
                                 request_failed; for deferrals/skips: sending_disabled,
                                 absence, outside_window, no_target, no_links,
                                 target_disabled, already_delivered
    next_attempt_at str | null   UTC ISO of the next try (deferred / retrying)
    response_snippet str | null  first 200 chars of the response, whitespace collapsed
    subject         str   first 100 chars

Writers LPUSH then LTRIM to 500; :func:`read_webhook_logs` applies the
original API's rules (days default 7, < 1 -> 7, > 30 -> 30, at most 50).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from redis.asyncio import Redis

__all__ = ["LOG_KEEP", "log_key", "normalize_days", "read_webhook_logs", "write_webhook_log"]

LOG_KEEP = 500
API_MAX = 50


def log_key(prefix: str) -> str:
    return f"{prefix}webhook_logs"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


async def write_webhook_log(redis: Redis, prefix: str, entry: dict[str, Any]) -> None:
    """LPUSH one entry (``timestamp`` filled in when absent) and trim to 500."""
    record = {"timestamp": iso(time.time()), "type": "custom", **entry}
    if isinstance(record.get("subject"), str):
        record["subject"] = record["subject"][:100]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(log_key(prefix), json.dumps(record, ensure_ascii=False))
        pipe.ltrim(log_key(prefix), 0, LOG_KEEP - 1)
        await pipe.execute()


def normalize_days(days: Any) -> int:
    try:
        value = int(days)
    except (TypeError, ValueError):
        return 7
    if value < 1:
        return 7
    return min(value, 30)


async def read_webhook_logs(
    redis: Redis, prefix: str, days: Any = 7, *, now: float | None = None, limit: int = API_MAX
) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` (50) entries within ``days``; unparseable stamps kept."""
    cutoff = (time.time() if now is None else now) - normalize_days(days) * 86400
    raw: Any = await redis.lrange(log_key(prefix), 0, LOG_KEEP - 1)
    entries: list[dict[str, Any]] = []
    for item in raw:
        try:
            entry = json.loads(item)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        try:
            stamp = dt.datetime.fromisoformat(str(entry.get("timestamp")).replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            if stamp.timestamp() < cutoff:
                continue
        except ValueError:
            pass
        entries.append(entry)
        if len(entries) >= limit:
            break
    return entries
