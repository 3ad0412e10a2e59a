"""Magic links: random bearer tokens of which only the SHA-256 is stored.

* One-shot links: ``<prefix>gateway:magic:<sha256>`` with ``EX`` =
  ``MAGIC_LINK_TTL_SECONDS``; consumed atomically (a Lua read-and-delete), so
  two clicks can never both log in.
* Permanent links (``unlimited``): no expiry, listed through the set
  ``<prefix>gateway:magic_permanent`` (of hashes), with an id and
  ``last_used_at``; revocable one by one or all at once. They only open
  magic-link (operator) sessions; revoking a link ends the sessions it opened
  (the route calls ``SessionStore.end_link_sessions`` after the link is gone).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from render_signal.common.keys import Keys
from render_signal.common.timefmt import iso

__all__ = ["MagicLink", "MagicLinkStore", "hash_token", "iso_utc"]

# Returns the hash fields; deletes single-use records in the same step.
_CONSUME = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local record = {}
for i = 1, #fields, 2 do record[fields[i]] = fields[i + 1] end
if record['expires_at'] ~= nil and record['expires_at'] ~= '' then
  if tonumber(record['expires_at']) <= tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[1])
    return nil
  end
end
if record['single_use'] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
end
return fields
"""


class MagicLink(msgspec.Struct, frozen=True, kw_only=True):
    """A stored link (never the token itself)."""

    id: str
    user: str
    created_at: float
    expires_at: float | None
    single_use: bool
    last_used_at: float | None = None


def iso_utc(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MagicLinkStore:
    """Create, consume, list and revoke magic links."""

    def __init__(
        self, redis: Redis, keys: Keys, *, ttl_s: int = 900, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = max(60, ttl_s)
        self.clock = clock
        self.index_key = keys.magic_links_permanent
        self._consume = redis.register_script(_CONSUME)

    def key(self, token_hash: str) -> str:
        return self.keys.magic_link(token_hash)

    def token_key(self, token: str) -> str:
        """The record key of the link whose raw token is ``token``."""
        return self.key(hash_token(token))

    async def create(self, user: str, *, unlimited: bool) -> tuple[str, MagicLink]:
        """A new link; returns the raw token (shown once) and its record."""
        token = secrets.token_urlsafe(32)
        token_hash = hash_token(token)
        now = self.clock()
        link = MagicLink(
            id=secrets.token_hex(8),
            user=user,
            created_at=now,
            expires_at=None if unlimited else now + self.ttl_s,
            single_use=not unlimited,
        )
        mapping: dict[str, str] = {
            "id": link.id,
            "user": user,
            "created_at": repr(now),
            "expires_at": "" if link.expires_at is None else repr(link.expires_at),
            "single_use": "1" if link.single_use else "0",
            "last_used_at": "",
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(token_hash), mapping=mapping)  # type: ignore[arg-type]
            if unlimited:
                pipe.sadd(self.index_key, token_hash)
            else:
                pipe.expire(self.key(token_hash), self.ttl_s)
            await pipe.execute()
        return token, link

    async def consume(self, token: str) -> MagicLink | None:
        """The link for ``token`` (one-shot links are deleted atomically), or None."""
        if not token or len(token) > 256:
            return None
        raw: Any = await self._consume(
            keys=[self.key(hash_token(token))], args=[repr(self.clock())]
        )
        if not raw:
            return None
        return self._decode(raw)

    @staticmethod
    def _decode(raw: Any) -> MagicLink:
        if isinstance(raw, dict):
            pairs = {_s(k): _s(v) for k, v in raw.items()}
        else:
            pairs = {_s(raw[i]): _s(raw[i + 1]) for i in range(0, len(raw), 2)}
        return MagicLink(
            id=pairs.get("id", ""),
            user=pairs.get("user", ""),
            created_at=float(pairs.get("created_at") or 0),
            expires_at=float(pairs["expires_at"]) if pairs.get("expires_at") else None,
            single_use=pairs.get("single_use") == "1",
            last_used_at=float(pairs["last_used_at"]) if pairs.get("last_used_at") else None,
        )

    async def list_permanent(self) -> list[tuple[str, MagicLink]]:
        """(hash, link) for every permanent link, newest first; prunes stale index entries."""
        found: list[tuple[str, MagicLink]] = []
        for member in await self.redis.smembers(self.index_key):
            token_hash = _s(member)
            raw = await self.redis.hgetall(self.key(token_hash))
            if not raw:
                await self.redis.srem(self.index_key, token_hash)
                continue
            found.append((token_hash, self._decode(raw)))
        found.sort(key=lambda item: item[1].created_at, reverse=True)
        return found

    async def revoke(self, link_id: str) -> bool:
        for token_hash, link in await self.list_permanent():
            if link.id == link_id:
                await self.redis.delete(self.key(token_hash))
                await self.redis.srem(self.index_key, token_hash)
                return True
        return False

    async def revoke_all(self) -> list[str]:
        """Delete every permanent link; returns their ids."""
        links = await self.list_permanent()
        for token_hash, _ in links:
            await self.redis.delete(self.key(token_hash))
        await self.redis.delete(self.index_key)
        return [link.id for _, link in links]

    @staticmethod
    def to_api(link: MagicLink) -> dict[str, Any]:
        return {
            "id": link.id,
            "created_at": iso_utc(link.created_at),
            "last_used_at": iso_utc(link.last_used_at),
            "unlimited": not link.single_use,
        }


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
