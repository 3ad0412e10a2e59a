"""Runtime-configuration documents: one msgspec struct per document, with its validation.

The gateway validates a write by decoding the merged document into its struct
(:func:`apply_changes`); the services read the very same struct through the
config store. A field exists here if and only if something applies it: its
``Meta(extra=...)`` says who (``applied_by``) and, when the environment
supplies the default, from which variable (``env``). Such fields are ``UNSET``
until the dashboard sets them; the service then applies its environment value
(:func:`pick`), and reports which source won (``records.AppliedConfig``).

Input forms kept from the original (:func:`apply_changes`): ``null`` or ``""``
for an env-backed field returns it to the environment default, ``""`` clears a
nullable field, and a comma-separated string is accepted for a list.
Validation errors name the field (``ConfigInvalid("retry_count: ...")``).

(Longer than 300 lines on purpose: this is the whole schema of the runtime
configuration, flat declarations that read best side by side.)
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType
from render_signal.common.configrules import RoutingRule
from render_signal.common.errors import ConfigInvalid
from render_signal.common.events import ALL_DETECTORS, Detector
from render_signal.common.urls import target_url_problem

__all__ = [
    "DOCUMENTS",
    "UNSET",
    "WEEKDAYS",
    "ConfigDoc",
    "MakeConfig",
    "PollingConfig",
    "ProcessingPrefs",
    "RoutingRules",
    "RuntimeFlags",
    "UnsetType",
    "WebhookConfig",
    "apply_changes",
    "decode_stored",
    "normalise_time",
    "pick",
    "to_stored",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
D = TypeVar("D", bound="ConfigDoc")

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^\s*(\d{1,2})\s*[:hH]\s*(\d{2})\s*$")
_EMAIL = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$")


def _meta(
    applied_by: str, description: str, *, env: str | None = None, **constraints: int | str
) -> Meta:
    """Field metadata: who applies it, its environment fallback, its bounds."""
    extra: dict[str, str] = {"applied_by": applied_by}
    if env:
        extra["env"] = env
    options: dict[str, Any] = {"description": description, "extra": extra, **constraints}
    return Meta(**options)


def pick(value: T | UnsetType, fallback: T) -> T:
    """The stored value, or ``fallback`` (the environment default) while it is UNSET."""
    return fallback if isinstance(value, UnsetType) else value


def normalise_time(value: str, name: str) -> str:
    """``9h00``/``09:00``/``9:00`` -> ``09:00`` (hour 0-23, minutes 00-59)."""
    match = _TIME.match(value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigInvalid(
            f"{name}: invalid time {value!r} (expected HH:MM or HHhMM, 00:00-23:59)"
        )
    return f"{int(match.group(1)):02d}:{int(match.group(2)):02d}"


def _weekdays(values: list[str], name: str) -> list[str]:
    days = {v.strip().lower() for v in values}
    unknown = sorted(days - set(WEEKDAYS))
    if unknown:
        raise ConfigInvalid(f"{name}: invalid day {unknown[0]!r} (english weekday names)")
    return [d for d in WEEKDAYS if d in days]


def _emails(values: list[str], name: str) -> list[str]:
    seen: list[str] = []
    for raw in values:
        address = raw.strip().lower()
        if not address:
            continue
        if not _EMAIL.match(address):
            raise ConfigInvalid(f"{name}: invalid email {raw!r}")
        if address not in seen:
            seen.append(address)
    return seen


def _words(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))[:500]


class ConfigDoc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every document; ``NAME`` is its key in the config store."""

    NAME: ClassVar[str]

    def target_urls(self) -> list[tuple[str, str]]:
        """``(field path, url)`` for every outbound URL in the document."""
        return []


# -- webhook_config ---------------------------------------------------------------------
Time = Annotated[str, Meta(max_length=16)]


class WebhookConfig(ConfigDoc):
    """The default webhook target, how to send, and when (window, Absence Globale)."""

    NAME: ClassVar[str] = "webhook_config"

    webhook_url: (
        Annotated[
            str,
            _meta("notify", "Default webhook target (https)", env="WEBHOOK_URL", max_length=2048),
        ]
        | UnsetType
    ) = UNSET
    webhook_ssl_verify: (
        Annotated[
            bool, _meta("notify", "Verify the target's TLS certificate", env="WEBHOOK_SSL_VERIFY")
        ]
        | UnsetType
    ) = UNSET
    webhook_sending_enabled: (
        Annotated[bool, _meta("notify", "Master switch for sending", env="WEBHOOK_SENDING_ENABLED")]
        | UnsetType
    ) = UNSET
    webhook_delivery_mode: (
        Annotated[
            Literal["json", "form"],
            _meta("notify", "Content type of the body", env="WEBHOOK_DELIVERY_MODE"),
        ]
        | UnsetType
    ) = UNSET
    webhook_fallback_on_415: (
        Annotated[
            bool,
            _meta("notify", "Retry in the other mode after a 415", env="WEBHOOK_FALLBACK_ON_415"),
        ]
        | UnsetType
    ) = UNSET
    webhook_time_start: (
        Annotated[
            Time,
            _meta(
                "notify",
                "Delivery window start, HH:MM (null: no window)",
                env="WEBHOOKS_TIME_START",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    webhook_time_end: (
        Annotated[
            Time, _meta("notify", "Delivery window end, HH:MM (exclusive)", env="WEBHOOKS_TIME_END")
        ]
        | UnsetType
        | None
    ) = UNSET
    outside_window_policy: Annotated[
        Literal["defer", "drop"],
        _meta("notify", "Outside the window or on an absence day: defer (default) or drop"),
    ] = "defer"
    webhook_accept_any_2xx: Annotated[
        bool,
        _meta(
            "notify",
            "Count any 2xx from the default target as delivered, even a JSON reply"
            " saying success: false (by default that is a failure, retried)",
        ),
    ] = False
    absence_pause_enabled: Annotated[
        bool, _meta("notify", "Absence Globale: no webhook at all on the listed days")
    ] = False
    absence_pause_days: Annotated[
        list[str], _meta("notify", "Absence days (english weekday names)", max_length=7)
    ] = []

    def __post_init__(self) -> None:
        if isinstance(self.webhook_url, str):
            problem = target_url_problem(self.webhook_url)
            if problem:
                raise ConfigInvalid(f"webhook_url: {problem}")
        for name in ("webhook_time_start", "webhook_time_end"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, normalise_time(value, name))
        start, end = self.webhook_time_start, self.webhook_time_end
        if type(start) is not type(end):
            raise ConfigInvalid(
                "webhook_time_start, webhook_time_end: both or neither"
                " (both empty clears the window)"
            )
        self.absence_pause_days = _weekdays(self.absence_pause_days, "absence_pause_days")
        if self.absence_pause_enabled and not self.absence_pause_days:
            raise ConfigInvalid("absence_pause_enabled: enabling Absence Globale needs a day")

    def target_urls(self) -> list[tuple[str, str]]:
        return (
            [] if isinstance(self.webhook_url, UnsetType) else [("webhook_url", self.webhook_url)]
        )


# -- processing_prefs -------------------------------------------------------------------
class ProcessingPrefs(ConfigDoc):
    """How hard to retry, how fast to send, and which emails to ignore."""

    NAME: ClassVar[str] = "processing_prefs"

    retry_count: (
        Annotated[
            int,
            _meta(
                "notify", "Retries after the first attempt", env="WEBHOOK_MAX_ATTEMPTS", ge=0, le=10
            ),
        ]
        | UnsetType
    ) = UNSET
    retry_delay_sec: (
        Annotated[
            int,
            _meta(
                "notify",
                "First retry delay in seconds (doubles per attempt)",
                env="WEBHOOK_RETRY_BASE_SECONDS",
                ge=0,
                le=600,
            ),
        ]
        | UnsetType
    ) = UNSET
    webhook_timeout_sec: (
        Annotated[
            int,
            _meta("notify", "Timeout of one attempt", env="WEBHOOK_TIMEOUT_SECONDS", ge=1, le=300),
        ]
        | UnsetType
    ) = UNSET
    rate_limit_per_hour: (
        Annotated[
            int,
            _meta(
                "notify",
                "Sends per target per hour (0: no limit)",
                env="WEBHOOK_RATE_LIMIT_PER_HOUR",
                ge=0,
                le=100000,
            ),
        ]
        | UnsetType
    ) = UNSET
    exclude_keywords: Annotated[
        list[str], _meta("ingest", "Skip emails whose subject or body contains one", max_length=500)
    ] = []
    exclude_keywords_recadrage: Annotated[
        list[str], _meta("ingest", "Skip recadrage emails containing one", max_length=500)
    ] = []
    exclude_keywords_autorepondeur: Annotated[
        list[str], _meta("ingest", "Skip DESABO (auto-reply) emails containing one", max_length=500)
    ] = []
    detectors_enabled: Annotated[
        list[Detector], _meta("ingest", "Detectors to run (recadrage, DESABO)")
    ] = msgspec.field(default_factory=lambda: list(ALL_DETECTORS))

    def __post_init__(self) -> None:
        self.exclude_keywords = _words(self.exclude_keywords)
        self.exclude_keywords_recadrage = _words(self.exclude_keywords_recadrage)
        self.exclude_keywords_autorepondeur = _words(self.exclude_keywords_autorepondeur)
        self.detectors_enabled = list(dict.fromkeys(self.detectors_enabled))


# -- runtime_flags ----------------------------------------------------------------------
class RuntimeFlags(ConfigDoc):
    """Switches applied live, without a restart."""

    NAME: ClassVar[str] = "runtime_flags"

    disable_email_id_dedup: (
        Annotated[
            bool, _meta("ingest", "Process an email id seen before", env="DISABLE_EMAIL_ID_DEDUP")
        ]
        | UnsetType
    ) = UNSET
    allow_custom_webhook_without_links: (
        Annotated[
            bool,
            _meta(
                "notify",
                "Send emails without a provider link",
                env="ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS",
            ),
        ]
        | UnsetType
    ) = UNSET
    gmail_ingress_enabled: Annotated[
        bool, _meta("gateway", "Accept Gmail Apps Script pushes (409 when off)")
    ] = True


# -- polling_config ---------------------------------------------------------------------
Weekday = Annotated[int, Meta(ge=0, le=6)]


class PollingConfig(ConfigDoc):
    """When the IMAP watcher watches, and whose emails ingest accepts."""

    NAME: ClassVar[str] = "polling_config"

    enable_polling: Annotated[bool, _meta("ingest", "Watch the mailbox at all")] = True
    active_days: (
        Annotated[
            list[Weekday],
            _meta("ingest", "Days to watch, 0=Monday", env="POLLING_ACTIVE_DAYS", min_length=1),
        ]
        | UnsetType
    ) = UNSET
    active_start_hour: (
        Annotated[
            int, _meta("ingest", "First active hour", env="POLLING_ACTIVE_START_HOUR", ge=0, le=23)
        ]
        | UnsetType
    ) = UNSET
    active_end_hour: (
        Annotated[
            int,
            _meta(
                "ingest",
                "End hour, exclusive (24: midnight)",
                env="POLLING_ACTIVE_END_HOUR",
                ge=0,
                le=24,
            ),
        ]
        | UnsetType
    ) = UNSET
    vacation_start: Annotated[dt.date, _meta("ingest", "No watching from (inclusive)")] | None = (
        None
    )
    vacation_end: Annotated[dt.date, _meta("ingest", "No watching until (inclusive)")] | None = None
    sender_of_interest_for_polling: (
        Annotated[
            list[str],
            _meta(
                "ingest",
                "Accepted senders (empty: everyone)",
                env="SENDER_OF_INTEREST_FOR_POLLING",
                max_length=1000,
            ),
        ]
        | UnsetType
    ) = UNSET

    def __post_init__(self) -> None:
        if not isinstance(self.active_days, UnsetType):
            self.active_days = sorted(set(self.active_days))
        if not isinstance(self.sender_of_interest_for_polling, UnsetType):
            self.sender_of_interest_for_polling = _emails(
                self.sender_of_interest_for_polling, "sender_of_interest_for_polling"
            )
        if self.vacation_start and self.vacation_end and self.vacation_start > self.vacation_end:
            raise ConfigInvalid("vacation_start: must be on or before vacation_end")


# -- routing_rules ----------------------------------------------------------------------
class RoutingRules(ConfigDoc):
    """Rules sending matching emails to other targets (first match wins)."""

    NAME: ClassVar[str] = "routing_rules"

    rules: Annotated[list[RoutingRule], _meta("notify", "The rules, in order", max_length=200)] = []
    locked: Annotated[bool, _meta("gateway", "The dashboard shows the rules read-only")] = True

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules, start=1):
            base = rule.id.strip()[:100] or f"rule-{index}"
            rule_id, n = base, 2
            while rule_id in seen:
                rule_id, n = f"{base}-{n}", n + 1
            seen.add(rule_id)
            rule.id = rule_id
            rule.name = rule.name.strip()[:200] or f"Rule {index}"

    def target_urls(self) -> list[tuple[str, str]]:
        return [
            (f"rules[{i}].actions.webhook_url", r.actions.webhook_url)
            for i, r in enumerate(self.rules)
        ]


# -- make_config ------------------------------------------------------------------------
class MakeConfig(ConfigDoc):
    """Make.com scenarios started and stopped with the sending switch and Absence."""

    NAME: ClassVar[str] = "make_config"

    scenario_ids: (
        Annotated[
            list[Annotated[str, Meta(pattern=r"^\d{1,20}$")]],
            _meta("notify", "Make scenario ids (digits)", env="MAKE_SCENARIO_IDS", max_length=50),
        ]
        | UnsetType
    ) = UNSET


DOCUMENTS: tuple[type[ConfigDoc], ...] = (
    WebhookConfig,
    RoutingRules,
    PollingConfig,
    RuntimeFlags,
    ProcessingPrefs,
    MakeConfig,
)
BY_NAME: dict[str, type[ConfigDoc]] = {doc.NAME: doc for doc in DOCUMENTS}


# -- encoding and decoding --------------------------------------------------------------
def _field_name(message: str) -> tuple[str, str]:
    """msgspec's ``"Expected ... - at `$.a[0].b`"`` -> ``("a[0].b", "Expected ...")``."""
    text, sep, where = message.rpartition(" - at `$")
    if not sep:
        unknown = re.search(r"unknown field `([^`]+)`", message)
        return (unknown.group(1), "unknown field") if unknown else ("", message)
    return where.rstrip("`").lstrip("."), text


def _invalid(exc: msgspec.ValidationError) -> ConfigInvalid:
    name, text = _field_name(str(exc))
    inner, sep, rest = text.partition(": ")
    if name and sep and re.fullmatch(r"[a-z_]+", inner):
        name, text = f"{name}.{inner}", rest  # a nested struct named its own field
    return ConfigInvalid(f"{name}: {text}" if name else text)


def to_stored(doc: ConfigDoc) -> dict[str, object]:
    """The JSON object stored for ``doc`` (UNSET fields are absent)."""
    data: dict[str, object] = msgspec.to_builtins(doc)
    return data


def _convert(doc_type: type[D], data: Mapping[str, object]) -> D:
    try:
        return msgspec.convert(data, doc_type)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None


def decode_stored(doc_type: type[D], data: Mapping[str, object]) -> D:
    """Read a stored document leniently: a field a newer or older version left behind,
    or one that no longer validates, is dropped (and logged), never fatal."""
    fields = {f.name for f in msgspec.structs.fields(doc_type)}
    clean = {k: v for k, v in data.items() if k in fields}
    for _ in range(len(clean) + 1):
        try:
            return _convert(doc_type, clean)
        except ConfigInvalid as exc:
            bad = str(exc).split(":", 1)[0].split("[", 1)[0].split(".", 1)[0]
            logger.warning("CONFIG: stored %s ignored a value: %s", doc_type.NAME, exc)
            if bad not in clean:
                clean = {}
            else:
                clean.pop(bad)
    return doc_type()


def _csv(doc_type: type[ConfigDoc], name: str, text: str) -> object:
    """A comma/newline-separated string as the list the field holds (the original's form)."""
    for field in msgspec.structs.fields(doc_type):
        if field.name == name and "list[" in str(field.type):
            parts = [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]
            if "list[typing.Annotated[int" in str(field.type):
                return [int(p) if p.isdigit() else p for p in parts]
            return parts
    return text


def apply_changes(doc_type: type[D], current: D, changes: Mapping[str, object]) -> D:
    """``current`` with ``changes`` merged (top-level keys), validated as a whole.

    Raises:
        ConfigInvalid: naming the first invalid or unknown field.
    """
    merged = to_stored(current)
    defaults = {f.name: f.default for f in msgspec.structs.fields(doc_type)}
    for key, value in changes.items():
        if key in ("_updated_at", "_version"):
            continue
        if key in defaults and isinstance(defaults[key], UnsetType) and value in (None, ""):
            merged.pop(key, None)  # back to the environment default
            continue
        if isinstance(value, str) and value:
            value = _csv(doc_type, key, value)
        elif value == "" and key in defaults:
            value = None
        merged[key] = value
    return _convert(doc_type, merged)
