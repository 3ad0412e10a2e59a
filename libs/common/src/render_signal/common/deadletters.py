"""Dead-letter replay: the contract between the services that park work and the gateway.

Two kinds of dead letters exist:

* ``<stream>.dlq`` entries written by the streams runtime (fields ``type``,
  ``data``, ``error``, ``source_stream``, ``source_id``, ``group``,
  ``deliveries``, ``failed_at``). Replay re-adds ``{type, data}`` to the source
  stream; consumers are idempotent, so a replay never duplicates a delivery
  that already happened.
* ``<prefix>notify:deadletters`` entries written by notify for webhooks that
  failed for good (fields documented in ``render_signal.notify.deadletters``;
  ``webhook_id`` and ``job`` are what replay needs). Replay puts the job back in
  notify's schedule, due now, so it is re-sent with the SAME ``webhook-id``
  (the receiver's idempotency key).

Both replays delete the dead letter in the same transaction, so a replay is
never lost nor applied twice.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from render_signal.common.streams import dlq_key

__all__ = [
    "notify_dead_letter_key",
    "notify_disabled_targets_key",
    "replay_notify_dead_letter",
    "replay_stream_dead_letter",
]


def notify_dead_letter_key(prefix: str) -> str:
    return f"{prefix}notify:deadletters"


def notify_disabled_targets_key(prefix: str) -> str:
    """Hash: target URL -> JSON {disabled_at, status, email_id}, set on 410 Gone."""
    return f"{prefix}notify:disabled_targets"


async def replay_stream_dead_letter(redis: Redis, stream_key: str, entry_id: str) -> bool:
    """Move one ``<stream_key>.dlq`` entry back onto ``stream_key``. False if unknown."""
    key = dlq_key(stream_key)
    rows: Any = await redis.xrange(key, min=entry_id, max=entry_id)
    if not rows:
        return False
    fields: dict[bytes, bytes] = rows[0][1]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(stream_key, {"type": fields.get(b"type", b""), "data": fields.get(b"data", b"")})
        pipe.xdel(key, entry_id)
        await pipe.execute()
    return True


async def replay_notify_dead_letter(
    redis: Redis, prefix: str, entry_id: str, *, now: float | None = None
) -> str | None:
    """Re-enqueue one notify dead letter; returns its webhook-id, or None if unknown.

    Raises:
        ValueError: the record has no webhook id or job to replay.
    """
    key = notify_dead_letter_key(prefix)
    rows: Any = await redis.xrange(key, min=entry_id, max=entry_id)
    if not rows:
        return None
    fields: dict[bytes, bytes] = rows[0][1]
    webhook_id = fields.get(b"webhook_id", b"").decode()
    job = fields.get(b"job")
    if not webhook_id or not job:
        raise ValueError("dead letter has no job to replay")
    target = fields.get(b"target", b"").decode()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(f"{prefix}notify:jobs", webhook_id, job)
        pipe.zadd(f"{prefix}notify:scheduled", {webhook_id: time.time() if now is None else now})
        pipe.delete(f"{prefix}notify:final:{webhook_id}")
        if target:
            pipe.hdel(notify_disabled_targets_key(prefix), target)
        pipe.xdel(key, entry_id)
        await pipe.execute()
    return webhook_id
