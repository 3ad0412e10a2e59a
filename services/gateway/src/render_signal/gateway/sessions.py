"""Server-side sessions in Redis.

The browser holds only an opaque id (``secrets.token_urlsafe(32)``) in the
``rs_session`` cookie; Redis holds ``<prefix>gateway:session:<sha256(id)>``, so
a Redis dump never yields a usable cookie and logout or expiry really ends the
session. Sessions expire after ``SESSION_IDLE_SECONDS`` without a request and
``SESSION_ABSOLUTE_SECONDS`` after login, whichever comes first. The routes'
guards (cookies, CSRF, the auth dependencies) are in :mod:`.guards`.

Roles: a password login is an **admin**; a magic-link login is an
**operator** (view and operate, no configuration, links, import/export or
deploy; :mod:`.guards` enforces it). A magic session is recorded in the set
``<prefix>gateway:magic_sessions:<link id>`` in the same script that creates
it, and only while a permanent link still exists, so revoking the link
(:meth:`SessionStore.end_link_sessions`, after the link is deleted) ends every
session it opened, including one being created at that very moment.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Literal

import msgspec
from redis.asyncio import Redis
from render_signal.common.keys import Keys

__all__ = ["Role", "SessionData", "SessionStore"]

#: last_seen is rewritten at most this often (one Redis write per request is waste).
TOUCH_INTERVAL_S = 15.0

Role = Literal["admin", "operator"]

# KEYS: session, [index set, [permanent link]]; ARGV: data, ttl, session hash, index ttl.
_CREATE = """
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 1
"""


class SessionData(msgspec.Struct, kw_only=True):
    """What a session knows about its user."""

    user: str
    kind: Literal["password", "magic"]
    csrf_token: str
    created_at: float
    last_seen: float
    magic_link_id: str | None = None
    #: Sessions stored before roles existed decode as what their login implies.
    role: Role = "admin"

    def __post_init__(self) -> None:
        # Only a password login is ever an admin, whatever a stored record says.
        if self.kind != "password":
            self.role = "operator"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Create, load (with idle/absolute expiry) and delete sessions."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        idle_s: int = 1800,
        absolute_s: int = 28800,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.clock = clock
        self._create = redis.register_script(_CREATE)

    def key(self, session_id: str) -> str:
        return self.keys.session(_hash(session_id))

    def _ttl(self, data: SessionData, now: float) -> int:
        remaining = data.created_at + self.absolute_s - now
        return max(1, int(min(self.idle_s, remaining)))

    async def create(self, user: str) -> tuple[str, SessionData]:
        """A new admin session after a password login (always a new id: rotation)."""
        created = await self._store(user, "password", None, None)
        assert created is not None  # no link to have been revoked
        return created

    async def create_magic(
        self, user: str, link_id: str, link_key: str | None
    ) -> tuple[str, SessionData] | None:
        """A new operator session opened by magic link ``link_id``.

        ``link_key``: the permanent link's record; None when the session is refused
        because that record is gone (revoked since it was read). One-shot links
        pass None (they were deleted when consumed, and can't be revoked).
        """
        return await self._store(user, "magic", link_id, link_key)

    async def _store(
        self,
        user: str,
        kind: Literal["password", "magic"],
        link_id: str | None,
        link_key: str | None,
    ) -> tuple[str, SessionData] | None:
        now = self.clock()
        session_id = secrets.token_urlsafe(32)
        data = SessionData(
            user=user,
            kind=kind,
            role="admin" if kind == "password" else "operator",
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            magic_link_id=link_id,
        )
        keys = [self.key(session_id)]
        if link_id is not None:
            keys.append(self.keys.magic_link_sessions(link_id))
            if link_key is not None:
                keys.append(link_key)
        created = await self._create(
            keys=keys,
            args=[
                msgspec.json.encode(data),
                self._ttl(data, now),
                _hash(session_id),
                self.absolute_s,
            ],
        )
        return (session_id, data) if int(created) == 1 else None

    async def end_link_sessions(self, link_id: str) -> int:
        """End every session magic link ``link_id`` opened; returns how many were live.

        Call after deleting the link: no session can be added to the set then.
        """
        index = self.keys.magic_link_sessions(link_id)
        members = await self.redis.smembers(index)
        sessions = [
            self.keys.session(m.decode() if isinstance(m, bytes) else str(m)) for m in members
        ]
        ended = int(await self.redis.delete(*sessions)) if sessions else 0
        await self.redis.delete(index)
        return ended

    async def load(self, session_id: str) -> SessionData | None:
        """The live session for ``session_id``, refreshed; None when unknown or expired."""
        if not session_id or len(session_id) > 128:
            return None
        key = self.key(session_id)
        raw = await self.redis.get(key)
        if raw is None:
            return None
        try:
            data = msgspec.json.decode(raw, type=SessionData)
        except (msgspec.DecodeError, msgspec.ValidationError):
            await self.redis.delete(key)
            return None
        now = self.clock()
        if now - data.created_at >= self.absolute_s or now - data.last_seen >= self.idle_s:
            await self.redis.delete(key)
            return None
        if now - data.last_seen >= TOUCH_INTERVAL_S:
            data.last_seen = now
            # XX: a concurrent logout must not be undone by this refresh.
            await self.redis.set(key, msgspec.json.encode(data), ex=self._ttl(data, now), xx=True)
        return data

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(self.key(session_id))
