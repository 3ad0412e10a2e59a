"""What configuration each service applies, and where each value came from.

Every service runs an :class:`AppliedConfigReporter`: whenever a config change
is announced (and once per heartbeat interval), it reloads the documents the
service reads and writes an :class:`~render_signal.common.records.AppliedConfig`
to ``<prefix>applied:<service>:<instance>`` (expiring like the heartbeat). For
each field the service applies (``applied_by`` in the field's metadata), the
record holds the value in force and its source: ``dashboard`` (stored in the
document), ``env`` (the field is unset and the service's environment gave a
value) or ``default``. The dashboard shows these, so the page never claims a
value the services do not apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Mapping, Sequence

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from render_signal.common.configdocs import ConfigDoc, UnsetType
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.heartbeat import read_replica_records
from render_signal.common.keys import Keys
from render_signal.common.logs import mask_url
from render_signal.common.records import AppliedConfig, AppliedScalar, AppliedValue
from render_signal.common.settings import CommonSettings

__all__ = [
    "AppliedConfigReporter",
    "applied_values",
    "env_fallbacks",
    "field_meta",
    "read_applied",
]

logger = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(AppliedConfig)


@functools.cache
def field_meta(doc_type: type[ConfigDoc], name: str) -> dict[str, str]:
    """The ``extra`` metadata (``applied_by``, ``env``) of one field.

    Cached: ``msgspec.inspect.type_info`` resolves every annotation of the
    document again on each call, and the reporter asks for each field of each
    document every heartbeat (about 5 % of notify's CPU under load before the
    cache, bench/results/flame-notify-before.svg). Callers must not mutate
    the returned dict.
    """
    for field in msgspec.inspect.type_info(doc_type).fields:  # type: ignore[attr-defined]
        if field.name != name:
            continue
        found: dict[str, str] = {}
        stack = [field.type]
        while stack:
            node = stack.pop()
            extra = getattr(node, "extra", None)
            if isinstance(extra, dict):
                found.update({str(k): str(v) for k, v in extra.items()})
            stack.extend(getattr(node, "types", ()))
            inner = getattr(node, "type", None)
            if inner is not None and inner is not node:
                stack.append(inner)
        return found
    return {}


@functools.cache
def _fields(doc_type: type[ConfigDoc]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``msgspec.structs.fields``, cached (it re-resolves the annotations each call)."""
    return msgspec.structs.fields(doc_type)


def _scalar(name: str, value: object) -> AppliedScalar:
    if isinstance(value, str) and name.endswith("url"):
        return mask_url(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return list(value)
    if isinstance(value, list):
        return len(value)  # a list of structs (routing rules): how many
    return str(value)


def env_fallbacks(
    common: CommonSettings,
    values: Mapping[str, object],
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, AppliedValue]:
    """A service's environment fallbacks: variable -> the value it applies, marked
    ``env`` when the variable (or a legacy alias) was set, else ``default``."""
    aliases = aliases or {}
    return {
        name: AppliedValue(
            _scalar(name.lower(), value),
            "env" if common.was_set(name, *aliases.get(name, ())) else "default",
        )
        for name, value in values.items()
    }


def applied_values(
    service: str, docs: Sequence[ConfigDoc], env: Mapping[str, AppliedValue]
) -> dict[str, AppliedValue]:
    """``<document>.<field>`` -> value in force, for the fields ``service`` applies.

    ``env`` maps a variable name to the fallback the service applies (its value
    and whether the variable was set), for fields still UNSET in the document.
    """
    values: dict[str, AppliedValue] = {}
    for doc in docs:
        doc_type = type(doc)
        for field in _fields(doc_type):
            meta = field_meta(doc_type, field.name)
            if meta.get("applied_by") != service:
                continue
            value = getattr(doc, field.name)
            path = f"{doc.NAME}.{field.name}"
            if isinstance(value, UnsetType):
                fallback = env.get(meta.get("env", ""))
                values[path] = fallback or AppliedValue(None, "default")
                continue
            default = field.default_factory() if callable(field.default_factory) else field.default
            changed = value != default
            values[path] = AppliedValue(
                _scalar(field.name, value), "dashboard" if changed else "default"
            )
    return values


class AppliedConfigReporter:
    """Writes this replica's :class:`AppliedConfig` on every change and every interval."""

    def __init__(
        self,
        watcher: ConfigWatcher,
        *,
        service: str,
        instance: str,
        documents: Sequence[type[ConfigDoc]],
        env: Mapping[str, AppliedValue],
        interval_s: float,
    ) -> None:
        self.watcher = watcher
        self.redis: Redis = watcher.store.redis
        self.key = watcher.store.keys.applied(service, instance)
        self.service = service
        self.instance = instance
        self.documents = tuple(documents)
        self.env = dict(env)
        self.interval_s = interval_s
        self.ttl_ms = int(max(interval_s * 3, 5.0) * 1000)
        self._changed = asyncio.Event()
        watcher.subscribe(lambda _name: self._changed.set())

    async def report(self) -> AppliedConfig:
        loaded = [await self.watcher.get(doc_type) for doc_type in self.documents]
        record = AppliedConfig(
            service=self.service,
            instance=self.instance,
            ts=time.time(),
            versions={v.doc.NAME: v.version for v in loaded},
            values=applied_values(self.service, [v.doc for v in loaded], self.env),
        )
        await self.redis.set(self.key, msgspec.json.encode(record), px=self.ttl_ms)
        return record

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._changed.clear()
            try:
                await self.report()
            except (RedisError, OSError) as exc:
                logger.warning("CONFIG: could not record the applied config (%s)", exc)
            waiter = asyncio.ensure_future(self._changed.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {waiter, stopper}, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                stopper.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.key)


async def read_applied(redis: Redis, keys: Keys) -> list[AppliedConfig]:
    """Every live replica's applied configuration, by service then instance."""
    return await read_replica_records(redis, keys.applied_pattern, _decoder)
