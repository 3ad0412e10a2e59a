"""Dead letters: what the services park for good, listed and replayed by the gateway.

Two kinds:

* ``<stream>.dlq`` entries written by the streams runtime (fields ``type``,
  ``data``, ``error``, ``source_stream``, ``source_id``, ``group``,
  ``deliveries``, ``failed_at``, and the event's bulk fields). Replay re-adds
  the event's fields (``events.event_fields``) to the source
  stream; consumers are idempotent, so a replay never duplicates a delivery
  that already happened.
* ``<prefix>notify:deadletters``: webhooks that failed for good, one
  :class:`~render_signal.common.records.DeadLetter` per entry (field ``data``),
  written by notify (:func:`add_webhook_dead_letter`). Replay puts the job back
  in notify's schedule, due now, so it is re-sent with the SAME ``webhook-id``
  (the receiver's idempotency key), to the target's current configuration.

Both replays delete the dead letter in the same transaction, so a replay is
never lost nor applied twice.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis
from render_signal.common.events import event_fields
from render_signal.common.keys import Keys
from render_signal.common.records import DeadLetter
from render_signal.common.streams import read_range

__all__ = [
    "DEAD_LETTER_MAXLEN",
    "add_webhook_dead_letter",
    "list_webhook_dead_letters",
    "replay_stream_dead_letter",
    "replay_webhook_dead_letter",
]

DEAD_LETTER_MAXLEN = 10_000

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeadLetter)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def add_webhook_dead_letter(redis: Redis, keys: Keys, letter: DeadLetter) -> str:
    """Append ``letter``; returns its entry id."""
    entry = await redis.xadd(
        keys.notify_dead_letters,
        {"data": _encoder.encode(letter)},
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
    return _text(entry)


async def list_webhook_dead_letters(
    redis: Redis, keys: Keys, count: int = 200
) -> list[tuple[str, DeadLetter]]:
    """``(entry id, record)``, newest first; undecodable entries are skipped."""
    rows = await read_range(redis, keys.notify_dead_letters, count=count, newest_first=True)
    letters: list[tuple[str, DeadLetter]] = []
    for entry_id, fields in rows:
        try:
            letters.append((_text(entry_id), _decoder.decode(fields.get(b"data", b""))))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return letters


async def replay_stream_dead_letter(redis: Redis, stream_key: str, entry_id: str) -> bool:
    """Move one ``<stream_key>.dlq`` entry back onto ``stream_key``. False if unknown."""
    key = Keys.dlq(stream_key)
    rows = await read_range(redis, key, start=entry_id, end=entry_id)
    if not rows:
        return False
    fields = rows[0][1]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(stream_key, event_fields(fields))  # type: ignore[arg-type]
        pipe.xdel(key, entry_id)
        await pipe.execute()
    return True


async def replay_webhook_dead_letter(
    redis: Redis, keys: Keys, entry_id: str, *, now: float | None = None
) -> DeadLetter | None:
    """Re-enqueue one webhook dead letter, due now; None if unknown.

    Raises:
        ValueError: the record has no job to replay.
    """
    rows = await read_range(redis, keys.notify_dead_letters, start=entry_id, end=entry_id)
    if not rows:
        return None
    letter = _decoder.decode(rows[0][1].get(b"data", b""))
    if not letter.webhook_id or bytes(letter.job) in (b"", b"null"):
        raise ValueError("dead letter has no job to replay")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.notify_jobs, letter.webhook_id, bytes(letter.job))
        pipe.zadd(keys.notify_scheduled, {letter.webhook_id: time.time() if now is None else now})
        pipe.delete(keys.notify_final(letter.webhook_id))
        pipe.hdel(keys.notify_disabled_targets, letter.target)
        pipe.xdel(keys.notify_dead_letters, entry_id)
        await pipe.execute()
    return letter
