"""The status verdict, computed once: ``ok``, ``degraded`` or ``failing``, with its problems.

The dashboard's headline (``GET /api/status``) and ``render-signal status``
(which exits non-zero unless ``ok``) both call :func:`assess`. Problems come from:

* heartbeats -- a service with no live replica is **failing** ("down, last seen
  ..."); a replica whose heartbeat is older than 1.5 intervals (a hung or
  stopped process) is **failing** too;
* IMAP (ingest's heartbeat) -- configured but no watcher connected: **failing**,
  with the last error;
* deliveries per target (notify's ``TargetHealth``) -- a target whose last
  attempts failed: **failing** from :data:`FAILING_AFTER` failures in a row,
  **degraded** before; a target disabled by a 410: **failing**; webhooks
  dead-lettered in the last day: **degraded**;
* sending paused (switch, Absence Globale, window; notify's heartbeat): **degraded**,
  with until when;
* the R2 Worker's circuit breaker open (offload's heartbeat): **degraded**;
* stream backlog above :data:`BACKLOG_LIMIT` entries: **degraded**.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import msgspec
from redis.asyncio import Redis
from render_signal.common.heartbeat import is_alive, read_heartbeats, read_last_seen
from render_signal.common.keys import Keys
from render_signal.common.records import (
    HeartbeatDetails,
    HeartbeatRecord,
    StreamStatus,
    TargetHealth,
)
from render_signal.common.status import gather_streams
from render_signal.common.streams import read_range
from render_signal.common.timefmt import iso

__all__ = ["SERVICES", "Problem", "ServiceHealth", "StatusReport", "Verdict", "assess"]

SERVICES = ("ingest", "offload", "notify", "gateway")
FAILING_AFTER = 3
BACKLOG_LIMIT = 100
DEAD_LETTER_WINDOW_S = 86400.0

Verdict = Literal["ok", "degraded", "failing"]
Level = Literal["degraded", "failing"]
_target_decoder = msgspec.json.Decoder(TargetHealth)


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str  # service_down | service_stalled | imap | delivery | target_disabled | dead_letters
    #          | sending_paused | worker | backlog
    level: Level
    message: str
    since: float | None = None
    service: str | None = None


class InstanceHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    instance: str
    alive: bool
    last_seen: float | None = None
    age_s: float | None = None
    pid: int | None = None
    details: HeartbeatDetails | None = None


class ServiceHealth(msgspec.Struct, kw_only=True):
    service: str
    state: Literal["up", "stalled", "down"]
    instances: list[InstanceHealth]
    last_seen: float | None = None


class StatusReport(msgspec.Struct, kw_only=True):
    verdict: Verdict
    problems: list[Problem]
    services: list[ServiceHealth]
    streams: list[StreamStatus]
    targets: list[TargetHealth]
    checked_at: float


def _services(
    beats: Sequence[HeartbeatRecord], last_seen: dict[str, float], now: float
) -> tuple[list[ServiceHealth], list[Problem]]:
    problems: list[Problem] = []
    services: list[ServiceHealth] = []
    for name in SERVICES:
        mine = [b for b in beats if b.service == name]
        instances = [
            InstanceHealth(
                instance=b.instance,
                alive=is_alive(b, now),
                last_seen=b.ts,
                age_s=round(now - b.ts, 1),
                pid=b.pid,
                details=b.details,
            )
            for b in mine
        ]
        seen = max(
            (ts for key, ts in last_seen.items() if key.startswith(f"{name}:")), default=None
        )
        if not instances:
            when = f"last seen {iso(seen)}" if seen else "never seen"
            problems.append(
                Problem(
                    kind="service_down",
                    level="failing",
                    service=name,
                    since=seen,
                    message=f"{name} is down ({when})",
                )
            )
            services.append(ServiceHealth(service=name, state="down", instances=[], last_seen=seen))
            continue
        stalled = [i for i in instances if not i.alive]
        if len(stalled) == len(instances):
            oldest = min(i.last_seen or now for i in stalled)
            problems.append(
                Problem(
                    kind="service_stalled",
                    level="failing",
                    service=name,
                    since=oldest,
                    message=f"{name} stopped answering (no heartbeat for {now - oldest:.0f}s)",
                )
            )
        state: Literal["up", "stalled"] = "stalled" if len(stalled) == len(instances) else "up"
        services.append(
            ServiceHealth(service=name, state=state, instances=instances, last_seen=seen)
        )
    return services, problems


def _imap(beats: Sequence[HeartbeatRecord]) -> list[Problem]:
    states = [b.details.imap for b in beats if b.service == "ingest" and b.details.imap]
    configured = [s for s in states if s.role != "off"]
    if not configured or any(s.role == "inactive" for s in configured):
        return []  # not configured, or outside the polling schedule on purpose
    if any(s.role == "watching" and s.connected for s in configured):
        return []
    failed = max(configured, key=lambda s: s.last_error_at or 0.0)
    error = failed.last_error or "no replica holds the IMAP session"
    return [
        Problem(
            kind="imap",
            level="failing",
            since=failed.last_error_at,
            service="ingest",
            message=f"IMAP not connected: {error}",
        )
    ]


def _gates(beats: Sequence[HeartbeatRecord]) -> list[Problem]:
    for beat in beats:
        gate = beat.details.gate
        if beat.service == "notify" and gate is not None and not gate.open:
            until = f" until {iso(gate.until)}" if gate.until else ""
            return [
                Problem(
                    kind="sending_paused",
                    level="degraded",
                    service="notify",
                    message=f"sending paused ({gate.reason}){until}",
                )
            ]
    return []


def _worker(beats: Sequence[HeartbeatRecord]) -> list[Problem]:
    if any(b.service == "offload" and b.details.breaker == "open" for b in beats):
        return [
            Problem(
                kind="worker",
                level="degraded",
                service="offload",
                message="R2 Worker unreachable: links keep their source URL",
            )
        ]
    return []


def _targets(targets: Sequence[TargetHealth], disabled: int, dead: int) -> list[Problem]:
    problems: list[Problem] = []
    for target in targets:
        if target.consecutive_failures and (target.last_failure_at or 0) >= (
            target.last_success_at or 0
        ):
            cause = target.last_error or f"HTTP {target.last_status}"
            level: Level = "failing" if target.consecutive_failures >= FAILING_AFTER else "degraded"
            problems.append(
                Problem(
                    kind="delivery",
                    level=level,
                    since=target.failing_since,
                    service="notify",
                    message=f"deliveries to {target.name} ({target.url}) failing: {cause}"
                    f" ({target.consecutive_failures} in a row)",
                )
            )
    if disabled:
        problems.append(
            Problem(
                kind="target_disabled",
                level="failing",
                service="notify",
                message=f"{disabled} target(s) disabled after a 410 Gone",
            )
        )
    if dead:
        problems.append(
            Problem(
                kind="dead_letters",
                level="degraded",
                service="notify",
                message=f"{dead} webhook(s) dead-lettered in the last 24 h",
            )
        )
    return problems


def _backlog(streams: Sequence[StreamStatus]) -> list[Problem]:
    problems = []
    for stream in streams:
        waiting = max((g.pending + (g.lag or 0) for g in stream.groups), default=0)
        if waiting > BACKLOG_LIMIT:
            problems.append(
                Problem(
                    kind="backlog",
                    level="degraded",
                    message=f"{waiting} entries waiting on {stream.stream}",
                )
            )
    return problems


async def assess(redis: Redis, keys: Keys, *, now: float | None = None) -> StatusReport:
    """The verdict and its problems (see the module docstring)."""
    now = time.time() if now is None else now
    beats = await read_heartbeats(redis, keys)
    services, problems = _services(beats, await read_last_seen(redis, keys), now)
    live = [b for b in beats if is_alive(b, now)]
    raw_targets: dict[bytes, bytes] = await redis.hgetall(keys.notify_targets)  # type: ignore[assignment]
    targets = [_target_decoder.decode(v) for v in raw_targets.values()]
    disabled = int(await redis.hlen(keys.notify_disabled_targets))
    since = f"{int((now - DEAD_LETTER_WINDOW_S) * 1000)}-0"
    recent = await read_range(
        redis, keys.notify_dead_letters, start=since, count=200, newest_first=True
    )
    dead = len(recent)
    streams = await gather_streams(redis, keys)
    problems += _imap(live) + _targets(targets, disabled, dead) + _gates(live)
    problems += _worker(live) + _backlog(streams)
    verdict: Verdict = "ok"
    if problems:
        verdict = "failing" if any(p.level == "failing" for p in problems) else "degraded"
    return StatusReport(
        verdict=verdict,
        problems=problems,
        services=services,
        streams=streams,
        targets=targets,
        checked_at=now,
    )
