"""Email dedup: one ``mail.received`` per email, whatever path it took (IMAP, Gmail, raw).

Two kinds of markers, both kept ``ttl_s`` (``EMAIL_DEDUP_TTL_SECONDS``, 30 days):

* ``<p>ingest:seen:<email_id>`` holds the id of the event that claimed the email
  (``dup`` for a copy found to be a duplicate). IMAP, raw uploads and the Apps
  Script we ship all carry the Message-ID, hence one id: an exact match.
* ``<p>ingest:fp:<fingerprint>`` is a ZSET of the copies of one (sender, subject)
  (``common.identity.fingerprint``), scored by the email's date, with members
  ``m:<email_id>`` (Message-ID known) or ``n:<email_id>`` (not known: a push
  from the original's Apps Script). A copy matches an unmatched copy of the
  *other* kind dated within ``tolerance_s``: Gmail's timestamp and the Date
  header differ by seconds to minutes, so no id could be "within tolerance" by
  itself. Copies of the same kind never match here (two resends of one subject
  stay two emails; their exact ids tell true repeats apart), and a match
  consumes the member it matched: one IMAP copy absorbs at most one Gmail copy.

:meth:`SeenEmails.seen` is a cheap check made only when a filter would skip the
email (so that a copy is reported as a duplicate first); :meth:`claim` runs
right before publishing, atomically (one Lua script), so two copies parsed at
the same moment cannot both win. A claim records the claiming event id: an
entry redelivered after a crash between claim and publish claims again and is
published (downstream absorbs the repeat by ``email_id``), never lost.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["Claim", "SeenEmails"]

#: Copies remembered per (sender, subject), newest dates kept: a subject that
#: recurs daily stays bounded even within the TTL.
MAX_COPIES_PER_FINGERPRINT = 500

_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner then
  if owner == ARGV[1] then return {'claimed', ''} end
  return {'seen', owner}
end
local ttl, ts, tol = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (ts - ttl))
local other = (ARGV[5] == 'm') and 'n:' or 'm:'
local rows = redis.call('ZRANGEBYSCORE', KEYS[2], ts - tol, ts + tol, 'WITHSCORES')
local best, gap = nil, nil
for i = 1, #rows, 2 do
  if string.sub(rows[i], 1, 2) == other then
    local d = math.abs(tonumber(rows[i + 1]) - ts)
    if gap == nil or d < gap then best, gap = rows[i], d end
  end
end
if best then
  redis.call('ZREM', KEYS[2], best)
  redis.call('SET', KEYS[1], 'dup', 'EX', ttl)
  return {'match', string.sub(best, 3)}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], ts, ARGV[5] .. ':' .. ARGV[6])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[7]) - 1)
redis.call('EXPIRE', KEYS[2], ttl)
return {'claimed', ''}
"""


class Claim(msgspec.Struct, frozen=True):
    """The verdict on one copy: ``claimed`` (publish it) or a duplicate of ``other``."""

    verdict: Literal["claimed", "seen", "match"]
    #: ``seen``: the event id that claimed the email id; ``match``: the matched copy's id.
    other: str = ""

    @property
    def duplicate(self) -> bool:
        return self.verdict != "claimed"


class SeenEmails:
    """Which emails ingest already published (TTL-bounded)."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int, tolerance_s: float = 900.0) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s
        self.tolerance_s = tolerance_s
        self._claim = redis.register_script(_CLAIM)

    def key(self, email_id: str) -> str:
        return self.keys.ingest_seen(email_id)

    async def seen(self, email_id: str, event_id: str = "") -> bool:
        """True when another event already claimed ``email_id``."""
        owner = await self.redis.get(self.key(email_id))
        if isinstance(owner, bytes):
            owner = owner.decode()
        return owner is not None and owner != event_id

    async def claim(
        self,
        *,
        email_id: str,
        event_id: str,
        fingerprint: str,
        dated: float,
        has_message_id: bool,
    ) -> Claim:
        """Claim the email for ``event_id`` unless a copy of it was claimed (see module doc).

        Args:
            dated: the email's own date (epoch seconds), not its arrival time.
            has_message_id: whether this copy's id comes from its Message-ID.
        """
        verdict, other = await self._claim(
            keys=[self.key(email_id), self.keys.ingest_fingerprint(fingerprint)],
            args=[
                event_id,
                self.ttl_s,
                repr(float(dated)),
                repr(float(self.tolerance_s)),
                "m" if has_message_id else "n",
                email_id,
                MAX_COPIES_PER_FINGERPRINT,
            ],
        )
        return Claim(verdict.decode(), other.decode())

    async def mark(self, email_id: str, event_id: str = "1") -> bool:
        """Remember ``email_id`` (exact marker only); True if it was not marked yet."""
        return bool(await self.redis.set(self.key(email_id), event_id, nx=True, ex=self.ttl_s))
