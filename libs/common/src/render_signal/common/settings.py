"""Settings every service shares, and the preflight that names every problem at start.

Each service builds its own frozen ``msgspec.Struct`` from an
:class:`~render_signal.common.envreader.EnvReader` in ``main()`` (no import-time
environment reads), embedding :class:`CommonSettings`; :func:`load_or_exit`
prints one line per problem and exits 2.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

import msgspec
from render_signal.common.envreader import EnvReader
from render_signal.common.errors import SettingsError
from render_signal.common.keys import DEFAULT_PREFIX, Keys
from render_signal.common.outbound import OutboundPolicy, is_loopback_host

__all__ = [
    "CommonSettings",
    "EnvReader",
    "default_instance_name",
    "load_or_exit",
    "read_common",
    "warn_exposed_dev_mode",
]

logger = logging.getLogger(__name__)


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings every service shares."""

    service: str
    redis_url: str
    key_prefix: str
    dev_mode: bool
    instance: str
    log_level: str
    log_format: str
    metrics_host: str
    metrics_port: int
    heartbeat_interval_s: float
    timezone: str
    drain_timeout_s: float
    #: Lifetime of this process's liveness key (``common.liveness``): other replicas
    #: take over its work at most this long after it died.
    liveness_ttl_s: float = 8.0
    #: Per-email history (``common.timeline``): days kept and emails kept at most.
    timeline_days: float = 30.0
    timeline_max_emails: int = 10_000
    #: Names of the variables set (non-blank) in the environment or .env: lets a
    #: service say whether a value it applies came from there or is a built-in default.
    env_set: frozenset[str] = frozenset()
    #: ``RENDER_SIGNAL_RESOLVE`` pins (dev mode only).
    resolve_overrides: tuple[tuple[str, str], ...] = ()
    #: ``OUTBOUND_ALLOW_NETWORKS``: internal networks outbound calls may reach.
    allowed_networks: tuple[str, ...] = ()

    def was_set(self, *names: str) -> bool:
        """True when any of ``names`` (a variable and its legacy aliases) was set."""
        return any(name in self.env_set for name in names)

    @property
    def keys(self) -> Keys:
        """This deployment's Redis keys (under ``REDIS_KEY_PREFIX``)."""
        return Keys(self.key_prefix)

    def outbound_policy(self) -> OutboundPolicy:
        """Where this service's outbound HTTP may connect (``common.outbound``)."""
        return OutboundPolicy(
            dev_mode=self.dev_mode,
            overrides=dict(self.resolve_overrides),
            allowed=tuple(ipaddress.ip_network(n) for n in self.allowed_networks),
        )


DEFAULT_METRICS_PORTS = {"ingest": 9101, "offload": 9102, "notify": 9103, "gateway": 8000}


def read_common(env: EnvReader, service: str) -> CommonSettings:
    """Read the variables every service needs. ``REDIS_URL`` is required."""
    redis_url = env.required("REDIS_URL", why="every service talks to Redis")
    if redis_url:
        scheme = urlsplit(redis_url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            env.problems.append("REDIS_URL: expected a redis://, rediss:// or unix:// URL")
        password = urlsplit(redis_url).password
        if password:
            env.remember_secret(password)
    tz = env.string("POLLING_TIMEZONE", "Europe/Paris")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        env.problems.append(f"POLLING_TIMEZONE: unknown timezone {tz!r}")
        tz = "Europe/Paris"
    log_format = env.string("LOG_FORMAT", "auto").lower()
    if log_format not in ("auto", "json", "text"):
        env.problems.append("LOG_FORMAT: expected auto, json or text")
        log_format = "auto"
    port_var = f"{service.upper()}_METRICS_PORT" if service != "gateway" else "PORT"
    return CommonSettings(
        service=service,
        redis_url=redis_url,
        key_prefix=env.string("REDIS_KEY_PREFIX", DEFAULT_PREFIX),
        dev_mode=env.dev_mode,
        instance=env.string("RENDER_SIGNAL_INSTANCE", "") or default_instance_name(),
        log_level=env.string("LOG_LEVEL", "INFO", "FLASK_LOG_LEVEL").upper(),
        log_format=log_format,
        metrics_host=env.string("METRICS_HOST", "127.0.0.1" if env.dev_mode else "0.0.0.0"),  # noqa: S104
        metrics_port=env.integer(
            port_var, DEFAULT_METRICS_PORTS[service], minimum=0, maximum=65535
        ),
        heartbeat_interval_s=env.number("HEARTBEAT_INTERVAL_SECONDS", 60.0, minimum=0.1),
        timezone=tz,
        drain_timeout_s=env.number("DRAIN_TIMEOUT_SECONDS", 20.0, minimum=0.1),
        liveness_ttl_s=env.number("LIVENESS_TTL_SECONDS", 8.0, minimum=1.0),
        timeline_days=env.number("TIMELINE_RETENTION_DAYS", 30.0, minimum=0.01),
        timeline_max_emails=env.integer("TIMELINE_MAX_EMAILS", 10_000, minimum=10),
        env_set=frozenset(k for k, v in env.environ().items() if v.strip()),
        resolve_overrides=tuple(env.resolve_overrides().items()),
        allowed_networks=tuple(str(n) for n in env.allowed_networks()),
    )


def warn_exposed_dev_mode(common: CommonSettings, host: str, variable: str) -> bool:
    """Log a loud warning when dev mode listens beyond loopback; True when it did.

    Dev mode accepts placeholder secrets, plain-http and loopback targets and
    test hooks: fine on a laptop, dangerous on an address others can reach.
    """
    if not common.dev_mode or is_loopback_host(host):
        return False
    logger.warning(
        "SECURITY: dev mode (RENDER_SIGNAL_ENV=%s) is listening on %s=%s, beyond loopback:"
        " placeholder secrets, plain-http and loopback targets and test hooks are accepted"
        " here; bind 127.0.0.1 or run in production mode",
        os.environ.get("RENDER_SIGNAL_ENV", "dev"),
        variable,
        host,
    )
    return True


def default_instance_name() -> str:
    """Stable per replica: the pod/host name, plus an index when several run on one host."""
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    index = os.environ.get("RENDER_SIGNAL_REPLICA", "0")
    return f"{host}-{index}"


T = TypeVar("T")


def load_or_exit(build: Callable[[EnvReader], T], env: EnvReader | None = None) -> T:
    """Build settings or exit 2 with one line per problem on stderr (the preflight)."""
    reader = env or EnvReader.from_process()
    try:
        settings = build(reader)
        reader.check()
    except SettingsError as exc:
        _die(exc.problems)
    return settings


def _die(problems: list[str]) -> NoReturn:
    for line in problems:
        print(f"CONFIG ERROR: {line}", file=sys.stderr)
    print(
        f"CONFIG ERROR: refusing to start ({len(problems)} problem(s)); see .env.example",
        file=sys.stderr,
    )
    raise SystemExit(2)
