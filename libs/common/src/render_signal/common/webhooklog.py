"""The webhook log: one Redis list of :class:`~render_signal.common.records.WebhookAttempt`.

Notify appends (LPUSH, newest first, trimmed to :data:`LOG_KEEP`); the gateway
and ``render-signal send`` read with :func:`read_attempts`, which applies the
original API's rules: ``days`` defaults to 7, below 1 means 7, above 30 means
30; at most 50 entries; an entry whose timestamp cannot be parsed is kept.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.keys import Keys
from render_signal.common.records import WebhookAttempt
from render_signal.common.timefmt import epoch

__all__ = [
    "API_MAX",
    "LOG_KEEP",
    "append_attempt",
    "normalize_days",
    "read_attempts",
    "stage_attempt",
]

LOG_KEEP = 500
API_MAX = 50

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WebhookAttempt)


async def append_attempt(redis: Redis, keys: Keys, entry: WebhookAttempt) -> None:
    """LPUSH one entry and trim the log to :data:`LOG_KEEP`."""
    async with redis.pipeline(transaction=True) as pipe:
        stage_attempt(pipe, keys, entry)
        await pipe.execute()


def stage_attempt(pipe: Pipeline, keys: Keys, entry: WebhookAttempt) -> None:
    """:func:`append_attempt`'s commands, added to a caller's MULTI."""
    entry.subject = entry.subject[:100]
    pipe.lpush(keys.webhook_log, _encoder.encode(entry))
    pipe.ltrim(keys.webhook_log, 0, LOG_KEEP - 1)


def normalize_days(days: int) -> int:
    return 7 if days < 1 else min(days, 30)


async def read_attempts(
    redis: Redis, keys: Keys, days: int = 7, *, now: float | None = None, limit: int = API_MAX
) -> list[WebhookAttempt]:
    """Newest first, at most ``limit`` entries from the last ``days`` (see module doc)."""
    cutoff = (time.time() if now is None else now) - normalize_days(days) * 86400
    raw: Any = await redis.lrange(keys.webhook_log, 0, LOG_KEEP - 1)
    entries: list[WebhookAttempt] = []
    for item in raw:
        try:
            entry = _decoder.decode(item)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        stamp = epoch(entry.timestamp)
        if stamp is not None and stamp < cutoff:
            continue
        entries.append(entry)
        if len(entries) >= limit:
            break
    return entries
