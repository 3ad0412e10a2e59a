"""Reading the environment: typed values, and every problem collected, not just the first.

The reader collects every missing or invalid variable instead of stopping at the
first one, so an operator fixes a broken deployment in one round trip. Values
come from the process environment first, then from a ``.env`` file (Twelve-Factor:
the environment always wins). Legacy names from the original Flask monolith are
accepted as aliases (``TRIGGER_PAGE_*`` for ``DASHBOARD_*``, ``FLASK_SECRET_KEY``
for ``SECRET_KEY``). Secrets are registered with the log redactor as they are read.

Outside dev mode a secret is refused when it is a placeholder, and, when the
caller gives a ``min_length``, when it is shorter than that or has fewer than
:data:`MIN_DISTINCT_CHARACTERS` different characters (``x``, ``1``, ``aaaa...``
are guessable whatever their length). A value the caller recognises as a
stored hash (``exempt``) is taken as is. The error line states the rule and
never the value.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from render_signal.common.errors import SettingsError
from render_signal.common.logs import register_secret
from render_signal.common.outbound import IPNetwork, normalise_host, parse_ip
from render_signal.common.urls import policy_problem

N = TypeVar("N", int, float)

__all__ = [
    "DEV_MODE_WORDS",
    "MIN_DISTINCT_CHARACTERS",
    "PLACEHOLDER_SECRETS",
    "EnvReader",
    "load_env_file",
    "weak_secret_problem",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "off", ""})

#: Values people leave in templates. Refused as secrets outside dev mode.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme", "change-me", "change_me", "secret", "password", "admin", "token", "test",
        "dev", "xxx", "todo", "replace-me", "your-secret",
        "votre_cle_secrete_tres_longue_et_aleatoire", "token-ultra-secret",
        "votre-secret-token-partage",
    }
)  # fmt: skip


DEV_MODE_WORDS = frozenset({"dev", "development", "local", "test"})

#: The entropy floor of a secret with a minimum length: this many different characters.
MIN_DISTINCT_CHARACTERS = 8


def weak_secret_problem(value: str, min_length: int) -> str | None:
    """Why ``value`` is too weak for a secret of ``min_length``, or None."""
    if len(value) >= min_length and len(set(value)) >= MIN_DISTINCT_CHARACTERS:
        return None
    return (
        f"too weak: at least {min_length} characters with {MIN_DISTINCT_CHARACTERS} different"
        f" ones are required (got {len(value)} characters, {len(set(value))} different)"
    )


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
        self._allowed: tuple[IPNetwork, ...] | None = None

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

    def secret(
        self,
        name: str,
        *aliases: str,
        required: bool = True,
        dev_default: str = "",
        min_length: int = 0,
        exempt: Callable[[str], bool] | None = None,
    ) -> str:
        """A secret: required (unless a dev default applies); outside dev mode never a
        placeholder, and at least ``min_length`` characters with enough different ones
        (unless ``exempt(value)``: e.g. a password hash)."""
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
        elif not self.dev_mode and min_length and not (exempt and exempt(value)):
            problem = weak_secret_problem(value, min_length)
            if problem:
                self.problems.append(f"{used}: {problem}")
        self.remember_secret(value)
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
        return self._bounded(name, aliases, default, int, "an integer", minimum, maximum)

    def number(self, name: str, default: float, *aliases: str, minimum: float = 0.0) -> float:
        return self._bounded(name, aliases, default, float, "a number", minimum, None)

    def _bounded(
        self,
        name: str,
        aliases: tuple[str, ...],
        default: N,
        convert: Callable[[str], N],
        kind: str,
        minimum: N | None,
        maximum: N | None,
    ) -> N:
        found = self.raw(name, *aliases)
        if found is None:
            return default
        used, value = found
        try:
            number = convert(value)
        except ValueError:
            self.problems.append(f"{used}: expected {kind}, got {value!r}")
            return default
        if minimum is not None and number < minimum:
            self.problems.append(f"{used}: must be >= {minimum}, got {number}")
            return default
        if maximum is not None and number > maximum:
            self.problems.append(f"{used}: must be <= {maximum}, got {number}")
            return default
        return number

    def url(self, name: str, *aliases: str, required: bool = False, secret: bool = False) -> str:
        """A target URL: https and no loopback outside dev mode; never a placeholder host."""
        found = self.raw(name, *aliases)
        if found is None:
            if required:
                self.required(name, *aliases)
            return ""
        used, value = found
        if secret:
            self.remember_secret(value)
        problem = policy_problem(value, dev_mode=self.dev_mode, allowed=self.allowed_networks())
        if problem:
            self.problems.append(f"{used}: {problem}")
        return value

    def allowed_networks(self) -> tuple[IPNetwork, ...]:
        """``OUTBOUND_ALLOW_NETWORKS``: internal networks outbound calls may reach (cached)."""
        if self._allowed is None:
            networks: list[IPNetwork] = []
            for item in self.csv("OUTBOUND_ALLOW_NETWORKS"):
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    self.problems.append(f"OUTBOUND_ALLOW_NETWORKS: {item!r} is not a network")
            self._allowed = tuple(networks)
        return self._allowed

    def fault_point(self) -> str:
        """``RENDER_SIGNAL_FAULT``: a test's crash hook, refused outside dev mode."""
        point = self.string("RENDER_SIGNAL_FAULT")
        if point and not self.dev_mode:
            self.problems.append("RENDER_SIGNAL_FAULT: fault injection refused outside dev mode")
            return ""
        return point

    def resolve_overrides(self) -> dict[str, str]:
        """``RENDER_SIGNAL_RESOLVE`` (``name=address,...``, as ``curl --resolve``), dev mode
        only: tests pin names to addresses, each still checked by the address policy."""
        pins: dict[str, str] = {}
        for item in self.csv("RENDER_SIGNAL_RESOLVE"):
            name, _, address = item.partition("=")
            if not name.strip() or parse_ip(address) is None:
                self.problems.append(f"RENDER_SIGNAL_RESOLVE: expected name=address, got {item!r}")
                continue
            pins[normalise_host(name)] = str(parse_ip(address))
        if pins and not self.dev_mode:
            self.problems.append("RENDER_SIGNAL_RESOLVE: name pinning refused outside dev mode")
            return {}
        return pins

    def remember_secret(self, value: str) -> None:
        """Mask ``value`` in every later log line."""
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
