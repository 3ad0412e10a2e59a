"""Dead letters: the stream ``<prefix>notify:deadletters``, listable and replayable.

Record fields (all strings in the stream)::

    webhook_id      Standard Webhooks id (kept on replay)
    email_id        our email id
    target          full target URL (mask it before showing: it may hold a secret)
    target_class    make | custom | rule
    last_status     HTTP status of the last attempt, "" if none
    last_response   first 200 chars of the last response / transport error
    failure_reason  upstream_client_error, gone (410), retry_window_exhausted, ...
    attempts        attempts made
    subject         first 100 chars
    failed_at       Unix time
    payload         the JSON body last sent (or that would have been sent)
    job             the job JSON, reset (attempt 0), ready to be re-enqueued

Replay (:func:`render_signal.common.deadletters.replay_notify_dead_letter`,
also used by the gateway): write ``job`` back to the ``<prefix>notify:jobs``
hash under ``webhook_id``, ZADD it to ``<prefix>notify:scheduled`` due now,
delete ``<prefix>notify:final:<id>``, remove the target from
``<prefix>notify:disabled_targets``, then XDEL the record. The scheduler
delivers it with the SAME webhook-id.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from render_signal.common.deadletters import (
    notify_dead_letter_key,
    notify_disabled_targets_key,
    replay_notify_dead_letter,
)
from render_signal.common.logs import mask_url

__all__ = [
    "DEAD_LETTER_MAXLEN",
    "add_dead_letter",
    "dead_letter_key",
    "disabled_targets_key",
    "list_dead_letters",
    "replay_dead_letter",
]

DEAD_LETTER_MAXLEN = 10_000


# The keys and the replay protocol are shared with the gateway (common.deadletters).
dead_letter_key = notify_dead_letter_key
disabled_targets_key = notify_disabled_targets_key
replay_dead_letter = replay_notify_dead_letter


async def add_dead_letter(redis: Redis, prefix: str, record: dict[str, Any]) -> str:
    fields = {k: "" if v is None else v for k, v in record.items()}
    fields.setdefault("failed_at", repr(time.time()))
    entry = await redis.xadd(
        dead_letter_key(prefix),
        fields,  # type: ignore[arg-type]
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def _decode(entry_id: Any, fields: dict[bytes, bytes], masked: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        k.decode(): v.decode("utf-8", "replace") for k, v in fields.items() if k != b"job"
    }
    record["id"] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    if masked:
        record["target"] = mask_url(record.get("target", ""))
    return record


async def list_dead_letters(
    redis: Redis, prefix: str, count: int = 50, *, masked: bool = True
) -> list[dict[str, Any]]:
    """Newest first; target URLs masked unless ``masked`` is False."""
    rows: Any = await redis.xrevrange(dead_letter_key(prefix), count=count)
    return [_decode(entry_id, fields, masked) for entry_id, fields in rows]
