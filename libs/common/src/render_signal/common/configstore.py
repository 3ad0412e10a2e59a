"""Runtime configuration documents in Redis ("Store-as-Source-of-Truth").

Each document (``webhook_config``, ``routing_rules``, ``polling_config``,
``runtime_flags``, ...) is a Redis hash ``<prefix>config:<name>`` with fields
``data`` (JSON object), ``version`` (incremented on every write) and
``updated_at`` (UTC ISO). A write publishes ``<name>:<version>`` on
``<prefix>config:changed`` so readers in other processes reload at once; a
reader also re-checks the version at most every ``max_staleness_s`` so a lost
notification (reconnect) delays a change, never hides it.

Only the gateway writes; services read through :class:`ConfigWatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.errors import ConfigConflict

__all__ = ["ConfigConflict", "ConfigDocument", "ConfigStore", "ConfigWatcher"]

logger = logging.getLogger(__name__)

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


class ConfigDocument(msgspec.Struct, frozen=True):
    """A config document as read: its data, version and last update time."""

    name: str
    data: dict[str, Any]
    version: int
    updated_at: str | None

    def as_api(self) -> dict[str, Any]:
        """The data plus ``_updated_at`` and ``_version``, as the API returns it."""
        return {**self.data, "_updated_at": self.updated_at, "_version": self.version}


class ConfigStore:
    """Read and write config documents under ``prefix``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.channel = f"{prefix}config:changed"
        self._write = redis.register_script(_WRITE)

    def key(self, name: str) -> str:
        return f"{self.prefix}config:{name}"

    async def get(self, name: str) -> ConfigDocument:
        """The document, or an empty version-0 document when never written."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key(name))  # type: ignore[assignment]
        if not raw:
            return ConfigDocument(name, {}, 0, None)
        data = json.loads(raw.get(b"data", b"{}"))
        if not isinstance(data, dict):
            data = {}
        updated = raw.get(b"updated_at")
        return ConfigDocument(
            name, data, int(raw.get(b"version", b"0")), updated.decode() if updated else None
        )

    async def version(self, name: str) -> int:
        value = await self.redis.hget(self.key(name), "version")
        return int(value) if value else 0

    async def put(
        self, name: str, data: dict[str, Any], *, expected_version: int | None = None
    ) -> ConfigDocument:
        """Replace the document; bump its version; notify readers.

        Raises:
            ConfigConflict: ``expected_version`` given and not current.
        """
        clean = {k: v for k, v in data.items() if k not in ("_updated_at", "_version")}
        updated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        version = await self._write(
            keys=[self.key(name), self.channel],
            args=[
                json.dumps(clean, ensure_ascii=False, sort_keys=True),
                updated_at,
                "" if expected_version is None else str(expected_version),
                name,
            ],
        )
        if int(version) < 0:
            raise ConfigConflict(f"{name} changed since version {expected_version}")
        return ConfigDocument(name, clean, int(version), updated_at)

    async def update(self, name: str, changes: dict[str, Any]) -> ConfigDocument:
        """Merge ``changes`` into the current document (retries on a concurrent write)."""
        for _ in range(10):
            current = await self.get(name)
            try:
                return await self.put(
                    name, {**current.data, **changes}, expected_version=current.version
                )
            except ConfigConflict:
                continue
        raise ConfigConflict(f"{name}: too many concurrent writers")


class ConfigWatcher:
    """Cached reads that follow writes from other processes without a restart."""

    def __init__(self, store: ConfigStore, max_staleness_s: float = 2.0) -> None:
        self.store = store
        self.max_staleness_s = max_staleness_s
        self._cache: dict[str, tuple[ConfigDocument, float]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def get(self, name: str) -> ConfigDocument:
        """Current document; served from cache unless stale or invalidated."""
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None:
            doc, checked = cached
            if now - checked < self.max_staleness_s:
                return doc
            if await self.store.version(name) == doc.version:
                self._cache[name] = (doc, now)
                return doc
        doc = await self.store.get(name)
        if cached is None or cached[0].version != doc.version:
            logger.info("CONFIG: loaded %s version %d", name, doc.version)
        self._cache[name] = (doc, now)
        return doc

    def versions(self) -> dict[str, int]:
        """Version of each cached document (no Redis call; invalidated ones are absent)."""
        return {name: doc.version for name, (doc, _) in self._cache.items()}

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)

    async def listen(self, stop: asyncio.Event) -> None:
        """Invalidate cached documents as change notifications arrive."""
        while not stop.is_set():
            pubsub = self.store.redis.pubsub()
            try:
                await pubsub.subscribe(self.store.channel)
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
