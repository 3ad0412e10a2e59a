"""Where the IMAP watcher is in a mailbox: (mailbox, UIDVALIDITY, last UID).

Stored as the hash ``<prefix>ingest:imap:checkpoint:<mailbox>`` with fields
``mailbox``, ``uidvalidity``, ``last_uid``, ``last_internaldate`` (Unix time of
the newest processed message's INTERNALDATE, used to re-baseline after a
UIDVALIDITY change) and ``updated_at``.

No-loss order: the watcher advances the checkpoint only after ``publish``
returned for that UID. A crash between the two re-publishes the same message
with the same ``event_id`` at the next start; downstream dedup absorbs it.
The write only moves forward within one UIDVALIDITY, so a briefly doubled
watcher (lock lost during a pause) cannot move it back.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["Checkpoint", "CheckpointStore"]

_ADVANCE = """
local v = redis.call('HGET', KEYS[1], 'uidvalidity')
local last = tonumber(redis.call('HGET', KEYS[1], 'last_uid') or '-1')
if v == ARGV[2] and last ~= nil and last >= tonumber(ARGV[3]) then
  return 0
end
local ts = ARGV[4]
if ts == '' then
  ts = redis.call('HGET', KEYS[1], 'last_internaldate') or ''
end
redis.call('HSET', KEYS[1], 'mailbox', ARGV[1], 'uidvalidity', ARGV[2], 'last_uid', ARGV[3],
           'last_internaldate', ts, 'updated_at', ARGV[5])
return 1
"""


class Checkpoint(msgspec.Struct, frozen=True):
    """The last UID published (durably on ``mail.raw``) in one UID space."""

    mailbox: str
    uidvalidity: int
    last_uid: int
    last_internaldate: float | None = None


class CheckpointStore:
    """Reads and advances checkpoints under ``prefix``."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._advance = redis.register_script(_ADVANCE)

    def key(self, mailbox: str) -> str:
        return self.keys.imap_checkpoint(mailbox)

    async def load(self, mailbox: str) -> Checkpoint | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key(mailbox))  # type: ignore[assignment]
        if not raw or b"uidvalidity" not in raw:
            return None
        stamp = raw.get(b"last_internaldate", b"")
        return Checkpoint(
            mailbox,
            int(raw[b"uidvalidity"]),
            int(raw.get(b"last_uid", b"0")),
            float(stamp) if stamp else None,
        )

    async def advance(
        self, mailbox: str, uidvalidity: int, last_uid: int, internaldate: float | None = None
    ) -> bool:
        """Move to ``last_uid`` (never backwards in the same UIDVALIDITY). True if written."""
        result = await self._advance(
            keys=[self.key(mailbox)],
            args=[
                mailbox,
                str(uidvalidity),
                str(last_uid),
                "" if internaldate is None else repr(internaldate),
                repr(time.time()),
            ],
        )
        return bool(result)
