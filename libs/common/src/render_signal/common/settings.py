"""Environment -> frozen settings, with a preflight that names every problem.

Each service builds its own frozen ``msgspec.Struct`` from an :class:`EnvReader`.
The reader collects every missing or invalid variable instead of stopping at the
first one, so an operator fixes a broken deployment in one round trip. Values
come from the process environment first, then from a ``.env`` file (Twelve-Factor:
the environment always wins).

Legacy names from the original Flask monolith are accepted as aliases
(``TRIGGER_PAGE_*`` for ``DASHBOARD_*``, ``FLASK_SECRET_KEY`` for ``SECRET_KEY``).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

import msgspec
from render_signal.common.errors import SettingsError
from render_signal.common.keys import DEFAULT_PREFIX, Keys
from render_signal.common.logs import register_secret

__all__ = [
    "PLACEHOLDER_HOSTS",
    "PLACEHOLDER_SECRETS",
    "CommonSettings",
    "EnvReader",
    "SettingsError",
    "is_placeholder_host",
    "load_env_file",
    "load_or_exit",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "off", ""})

#: Values people leave in templates. Refused as secrets outside dev mode.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "admin",
        "token",
        "test",
        "dev",
        "xxx",
        "todo",
        "replace-me",
        "your-secret",
        "votre_cle_secrete_tres_longue_et_aleatoire",
        "token-ultra-secret",
        "votre-secret-token-partage",
    }
)

#: Webhook hosts that are never real receivers (the original lost emails to one).
PLACEHOLDER_HOSTS = frozenset(
    {"example.com", "example.net", "example.org", "test.com", "example.invalid", "invalid"}
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

DEV_MODE_WORDS = frozenset({"dev", "development", "local", "test"})


def load_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=value`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def is_placeholder_host(host: str) -> bool:
    """True for example.com-style hosts and their subdomains."""
    host = host.lower().rstrip(".")
    return any(host == p or host.endswith("." + p) for p in PLACEHOLDER_HOSTS)


def is_loopback_host(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


class EnvReader:
    """Reads typed values from an environment mapping and collects problems.

    Args:
        environ: the process environment (wins over the file).
        env_file: optional ``.env`` values used when a variable is absent.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, env_file: Mapping[str, str] | None = None
    ) -> None:
        merged: dict[str, str] = dict(env_file or {})
        merged.update(os.environ if environ is None else environ)
        self._env = merged
        self.problems: list[str] = []
        self.secret_values: set[str] = set()
        self.dev_mode = self._env.get("RENDER_SIGNAL_ENV", "production").strip().lower() in (
            DEV_MODE_WORDS
        )

    @classmethod
    def from_process(cls) -> EnvReader:
        """Environment plus the ``.env`` named by ``RENDER_SIGNAL_ENV_FILE`` (default ./.env)."""
        env_path = Path(os.environ.get("RENDER_SIGNAL_ENV_FILE", ".env"))
        return cls(os.environ, load_env_file(env_path))

    # -- raw access ---------------------------------------------------------------
    def raw(self, name: str, *aliases: str) -> tuple[str, str] | None:
        """Return ``(name_used, value)`` for the first non-blank of name/aliases."""
        for key in (name, *aliases):
            value = self._env.get(key)
            if value is not None and value.strip() != "":
                return key, value.strip()
        return None

    def environ(self) -> dict[str, str]:
        return dict(self._env)

    # -- typed getters ------------------------------------------------------------
    def string(self, name: str, default: str = "", *aliases: str) -> str:
        found = self.raw(name, *aliases)
        return found[1] if found else default

    def required(self, name: str, *aliases: str, why: str = "") -> str:
        found = self.raw(name, *aliases)
        if found is None:
            alias_text = f" (or legacy {', '.join(aliases)})" if aliases else ""
            reason = f": {why}" if why else ""
            self.problems.append(f"{name}: missing required variable{alias_text}{reason}")
            return ""
        return found[1]

    def secret(self, name: str, *aliases: str, required: bool = True, dev_default: str = "") -> str:
        """A secret: required (unless a dev default applies), never a placeholder in prod."""
        found = self.raw(name, *aliases)
        if found is None:
            if self.dev_mode and dev_default:
                return dev_default
            if required:
                self.required(name, *aliases)
            return ""
        used, value = found
        if not self.dev_mode and value.lower() in PLACEHOLDER_SECRETS:
            self.problems.append(
                f"{used}: placeholder secret refused outside dev mode (set a real random value)"
            )
        self._remember_secret(value)
        return value

    def boolean(self, name: str, default: bool, *aliases: str) -> bool:
        found = self.raw(name, *aliases)
        if found is None:
            return default
        used, value = found
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problems.append(f"{used}: expected a boolean (true/false), got {value!r}")
        return default

    def integer(
        self,
        name: str,
        default: int,
        *aliases: str,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        found = self.raw(name, *aliases)
        if found is None:
            return default
        used, value = found
        try:
            number = int(value)
        except ValueError:
            self.problems.append(f"{used}: expected an integer, got {value!r}")
            return default
        if minimum is not None and number < minimum:
            self.problems.append(f"{used}: must be >= {minimum}, got {number}")
            return default
        if maximum is not None and number > maximum:
            self.problems.append(f"{used}: must be <= {maximum}, got {number}")
            return default
        return number

    def number(self, name: str, default: float, *aliases: str, minimum: float = 0.0) -> float:
        found = self.raw(name, *aliases)
        if found is None:
            return default
        used, value = found
        try:
            number = float(value)
        except ValueError:
            self.problems.append(f"{used}: expected a number, got {value!r}")
            return default
        if number < minimum:
            self.problems.append(f"{used}: must be >= {minimum}, got {number}")
            return default
        return number

    def url(
        self,
        name: str,
        *aliases: str,
        required: bool = False,
        https_only: bool = True,
        refuse_placeholder: bool = True,
        secret: bool = False,
    ) -> str:
        """A URL; https required outside dev mode unless ``https_only`` is False.

        Loopback hosts (and plain http to them) are allowed in dev mode only, where
        people and tests run local receivers.
        """
        found = self.raw(name, *aliases)
        if found is None:
            if required:
                self.required(name, *aliases)
            return ""
        used, value = found
        if secret:
            self._remember_secret(value)
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            self.problems.append(f"{used}: not a valid http(s) URL")
            return value
        if refuse_placeholder and is_placeholder_host(host):
            self.problems.append(f"{used}: placeholder host {host!r} refused")
        loopback = is_loopback_host(host)
        if loopback and not self.dev_mode and https_only:
            self.problems.append(f"{used}: loopback host refused outside dev mode")
        elif https_only and parts.scheme != "https" and not (loopback and self.dev_mode):
            self.problems.append(f"{used}: must use https")
        return value

    def fault_point(self) -> str:
        """``RENDER_SIGNAL_FAULT``: a test's crash hook, refused outside dev mode."""
        point = self.string("RENDER_SIGNAL_FAULT")
        if point and not self.dev_mode:
            self.problems.append("RENDER_SIGNAL_FAULT: fault injection refused outside dev mode")
            return ""
        return point

    def _remember_secret(self, value: str) -> None:
        self.secret_values.add(value)
        register_secret(value)

    def csv(self, name: str, *aliases: str) -> tuple[str, ...]:
        found = self.raw(name, *aliases)
        if found is None:
            return ()
        return tuple(item.strip() for item in found[1].split(",") if item.strip())

    def check(self) -> None:
        """Raise :class:`SettingsError` if any problem was recorded."""
        if self.problems:
            raise SettingsError(list(self.problems))


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

    @property
    def keys(self) -> Keys:
        """This deployment's Redis keys (under ``REDIS_KEY_PREFIX``)."""
        return Keys(self.key_prefix)


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
            env._remember_secret(password)
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
    )


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
