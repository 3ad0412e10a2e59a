"""Server-side sessions in Redis.

The browser holds only an opaque id (``secrets.token_urlsafe(32)``) in the
``rs_session`` cookie; Redis holds ``<prefix>gateway:session:<sha256(id)>``, so
a Redis dump never yields a usable cookie and logout or expiry really ends the
session. Sessions expire after ``SESSION_IDLE_SECONDS`` without a request and
``SESSION_ABSOLUTE_SECONDS`` after login, whichever comes first. The routes'
guards (cookies, CSRF, the auth dependencies) are in :mod:`.guards`.
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

__all__ = ["SessionData", "SessionStore"]

#: last_seen is rewritten at most this often (one Redis write per request is waste).
TOUCH_INTERVAL_S = 15.0


class SessionData(msgspec.Struct, kw_only=True):
    """What a session knows about its user."""

    user: str
    kind: Literal["password", "magic"]
    csrf_token: str
    created_at: float
    last_seen: float
    magic_link_id: str | None = None


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

    def key(self, session_id: str) -> str:
        return self.keys.session(_hash(session_id))

    def _ttl(self, data: SessionData, now: float) -> int:
        remaining = data.created_at + self.absolute_s - now
        return max(1, int(min(self.idle_s, remaining)))

    async def create(
        self, user: str, kind: Literal["password", "magic"], magic_link_id: str | None = None
    ) -> tuple[str, SessionData]:
        """A new session (always a new id: rotation at login)."""
        now = self.clock()
        session_id = secrets.token_urlsafe(32)
        data = SessionData(
            user=user,
            kind=kind,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            magic_link_id=magic_link_id,
        )
        await self.redis.set(
            self.key(session_id), msgspec.json.encode(data), ex=self._ttl(data, now)
        )
        return session_id, data

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
