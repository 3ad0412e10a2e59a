"""Runtime configuration documents in Redis ("Store-as-Source-of-Truth").

Each document (:mod:`render_signal.common.configdocs`) is a Redis hash
``<prefix>config:<name>`` with fields ``data`` (JSON object), ``version``
(incremented on every write) and ``updated_at`` (UTC ISO). A write publishes
``<name>:<version>`` on ``<prefix>config:changed`` so readers in other
processes reload at once; a reader also re-checks the version at most every
``max_staleness_s`` so a lost notification (reconnect) delays a change, never
hides it.

Only the gateway writes (validated by decoding into the document's struct);
services read the same struct through :class:`ConfigWatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.configdocs import ConfigDoc, apply_changes, decode_stored, to_stored
from render_signal.common.errors import ConfigConflict
from render_signal.common.keys import Keys

__all__ = ["ConfigStore", "ConfigWatcher", "Versioned"]

logger = logging.getLogger(__name__)

D = TypeVar("D", bound=ConfigDoc)

_WRITE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= current then
  return -1
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'updated_at', ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[4] .. ':' .. v)
return v
"""


class Versioned(msgspec.Struct, Generic[D], frozen=True):
    """A document as read: its struct, version (0: never written) and last write time."""

    doc: D
    version: int
    updated_at: str | None


class ConfigStore:
    """Read and write the config documents of one deployment."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._write = redis.register_script(_WRITE)

    async def read(self, doc_type: type[D]) -> Versioned[D]:
        """The document (defaults, version 0, when never written)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.keys.config(doc_type.NAME))  # type: ignore[assignment]
        if not raw:
            return Versioned(doc_type(), 0, None)
        try:
            data = json.loads(raw.get(b"data", b"{}"))
        except ValueError:
            data = {}
        updated = raw.get(b"updated_at")
        return Versioned(
            decode_stored(doc_type, data if isinstance(data, dict) else {}),
            int(raw.get(b"version", b"0")),
            updated.decode() if updated else None,
        )

    async def version(self, name: str) -> int:
        value = await self.redis.hget(self.keys.config(name), "version")
        return int(value) if value else 0

    async def write(self, doc: D, *, expected_version: int | None = None) -> Versioned[D]:
        """Replace the document; bump its version; notify readers.

        Raises:
            ConfigConflict: ``expected_version`` given and not current.
        """
        updated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        version = await self._write(
            keys=[self.keys.config(doc.NAME), self.keys.config_changed],
            args=[
                json.dumps(to_stored(doc), ensure_ascii=False, sort_keys=True),
                updated_at,
                "" if expected_version is None else str(expected_version),
                doc.NAME,
            ],
        )
        if int(version) < 0:
            raise ConfigConflict(f"{doc.NAME} changed since version {expected_version}")
        return Versioned(doc, int(version), updated_at)

    async def update(self, doc_type: type[D], build: Callable[[D], D]) -> Versioned[D]:
        """Write ``build(current)``; retried when another writer got there first.

        ``build`` validates (it raises ``ConfigInvalid``, which propagates).
        """
        for _ in range(10):
            current = await self.read(doc_type)
            try:
                return await self.write(build(current.doc), expected_version=current.version)
            except ConfigConflict:
                continue
        raise ConfigConflict(f"{doc_type.NAME}: too many concurrent writers")

    async def apply(self, doc_type: type[D], changes: Mapping[str, object]) -> Versioned[D]:
        """Merge ``changes`` (validated, ``configdocs.apply_changes``) into the document."""
        return await self.update(
            doc_type, lambda current: apply_changes(doc_type, current, changes)
        )


class ConfigWatcher:
    """Cached typed reads that follow writes from other processes without a restart.

    Callbacks added with :meth:`subscribe` are called with the document name
    (None: all) whenever a change notification invalidates the cache, so a
    component can reload and act on the change at once.
    """

    def __init__(self, store: ConfigStore, max_staleness_s: float = 2.0) -> None:
        self.store = store
        self.max_staleness_s = max_staleness_s
        self._cache: dict[str, tuple[Versioned[ConfigDoc], float]] = {}
        self._subscribers: list[Callable[[str | None], None]] = []

    def subscribe(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(name)`` after each change notification (None: anything changed)."""
        self._subscribers.append(callback)

    async def get(self, doc_type: type[D]) -> Versioned[D]:
        """Current document; served from cache unless stale or invalidated."""
        name = doc_type.NAME
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None:
            versioned, checked = cached
            if now - checked < self.max_staleness_s:
                return versioned  # type: ignore[return-value]
            if await self.store.version(name) == versioned.version:
                self._cache[name] = (versioned, now)
                return versioned  # type: ignore[return-value]
        fresh = await self.store.read(doc_type)
        if cached is None or cached[0].version != fresh.version:
            logger.info("CONFIG: loaded %s version %d", name, fresh.version)
        self._cache[name] = (fresh, now)  # type: ignore[assignment]
        return fresh

    def versions(self) -> dict[str, int]:
        """Version of each cached document (no Redis call; invalidated ones are absent)."""
        return {name: versioned.version for name, (versioned, _) in self._cache.items()}

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)
        for callback in self._subscribers:
            callback(name)

    async def listen(self, stop: asyncio.Event) -> None:
        """Invalidate cached documents as change notifications arrive."""
        while not stop.is_set():
            pubsub = self.store.redis.pubsub()
            try:
                await pubsub.subscribe(self.store.keys.config_changed)
                # Anything may have changed while we were not subscribed.
                self.invalidate()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message":
                        name = bytes(message["data"]).decode().rsplit(":", 1)[0]
                        self.invalidate(name)
            except (RedisError, OSError) as exc:
                logger.warning("CONFIG: change listener reconnecting: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
