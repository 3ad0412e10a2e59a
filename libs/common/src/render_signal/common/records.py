"""Records one process writes to Redis and another reads, as typed msgspec structs.

=====================  ======================================  ==========================
record                 written by                              read by
=====================  ======================================  ==========================
:class:`WebhookAttempt`  notify (``common.webhooklog``)          gateway, ``render-signal``
:class:`DeadLetter`      notify (``common.deadletters``)         gateway (list, replay)
:class:`HeartbeatRecord` every service (``common.heartbeat``)    gateway, ``render-signal``
:class:`AppliedConfig`   every service (``common.appliedconfig``) gateway, tests
:class:`StreamStatus`    Redis itself (``common.status`` reads)  gateway, ``render-signal``
``LinkRecord``           offload, gateway import (``common.linkjournal``)  offload, gateway
=====================  ======================================  ==========================

Each is encoded as JSON with msgspec; readers decode into the same struct, so
a field renamed on one side fails a test instead of vanishing silently.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "AppliedConfig",
    "AppliedValue",
    "DeadLetter",
    "GroupStatus",
    "HeartbeatDetails",
    "HeartbeatRecord",
    "ImapState",
    "StreamStatus",
    "WebhookAttempt",
]

AttemptStatus = Literal["success", "error", "skipped", "deferred", "retrying", "dead_letter"]
TargetClass = Literal["make", "custom", "rule"]


class WebhookAttempt(msgspec.Struct, kw_only=True):
    """One entry of the webhook log (the original's log entry, extended).

    ``failure_reason`` is one of the original's classifications
    (``bot_protection_denied``, ``unsupported_media_type``, ``rate_limited``,
    ``upstream_server_error``, ``upstream_client_error``,
    ``remote_application_error``, ``request_failed``) or, for deferrals and
    skips, ``sending_disabled``, ``absence``, ``outside_window``, ``no_target``,
    ``no_links``, ``target_disabled``, ``rate_limited``, ``gone``,
    ``retries_exhausted``.
    """

    timestamp: str  # UTC ISO 8601
    email_id: str
    webhook_id: str
    target: str  # masked: scheme://host/***
    target_class: TargetClass
    status: AttemptStatus
    subject: str = ""  # first 100 characters
    type: str = "custom"  # the original's log type
    status_code: int | None = None
    attempt: int = 0  # 1-based; 0 when no request was made
    delivery_mode: str | None = None
    duration_ms: int | None = None
    failure_reason: str | None = None
    next_attempt_at: str | None = None  # UTC ISO of the next try
    response_snippet: str | None = None  # first 200 characters, whitespace collapsed


class DeadLetter(msgspec.Struct, kw_only=True):
    """A webhook that failed for good; ``job`` is what a replay puts back (opaque here)."""

    webhook_id: str
    email_id: str
    target: str  # full URL: mask it before showing (it may hold a secret)
    target_class: TargetClass
    failure_reason: str
    attempts: int
    failed_at: float
    subject: str = ""
    status_code: int | None = None
    response_snippet: str = ""
    payload: str = ""  # the JSON body last sent (or that would have been)
    job: msgspec.Raw = msgspec.Raw(b"null")


class ImapState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What ingest's IMAP watcher is doing (heartbeat detail)."""

    role: Literal["watching", "standby", "inactive", "off"] = "off"
    connected: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    last_sync_at: float | None = None


class GateState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Whether notify may send now (switch, Absence Globale, window), and until when not."""

    open: bool
    reason: str | None = None  # sending_disabled | absence | outside_window
    until: float | None = None


class HeartbeatDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Service-specific heartbeat fields (absent when they don't apply)."""

    handled: int | None = None
    published: int | None = None
    deferred: int | None = None
    offload: Literal["enabled", "disabled"] | None = None
    breaker: Literal["closed", "open", "half_open"] | None = None
    config_versions: dict[str, int] = {}
    imap: ImapState | None = None
    gate: GateState | None = None


class HeartbeatRecord(msgspec.Struct, kw_only=True):
    """``<prefix>heartbeat:<service>:<instance>``, expiring after three intervals."""

    service: str
    instance: str
    pid: int
    started_at: float
    ts: float
    interval_s: float
    details: HeartbeatDetails = msgspec.field(default_factory=HeartbeatDetails)


AppliedScalar = str | int | float | bool | None | list[str | int]


class AppliedValue(msgspec.Struct, array_like=True):
    """An effective configuration value and where it came from."""

    value: AppliedScalar
    source: Literal["dashboard", "env", "default"]


class AppliedConfig(msgspec.Struct, kw_only=True):
    """The configuration one replica applies, rewritten whenever it loads a new version.

    ``values`` maps ``<document>.<field>`` (only the fields this service applies)
    to the value in force; URLs are masked.
    """

    service: str
    instance: str
    ts: float
    versions: dict[str, int]
    values: dict[str, AppliedValue]


class GroupStatus(msgspec.Struct, kw_only=True):
    name: str
    pending: int
    lag: int | None  # None: unknown (Redis 6.2)
    consumers: int


class DisabledTarget(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A target notify stopped sending to after a 410 Gone (``notify:disabled_targets``,
    field = its URL); a replay of one of its dead letters lifts it."""

    disabled_at: str  # UTC ISO 8601
    status: int = 410
    email_id: str | None = None


class StreamStatus(msgspec.Struct, kw_only=True):
    """Backlog of one stream, as XINFO reports it."""

    stream: str
    length: int
    dead_letters: int
    groups: list[GroupStatus]
    last_entry_at: float | None = None


# -- the per-email timeline (written through ``common.timeline``) ----------------------
EmailState = Literal[
    "received",
    "parsed",
    "offloaded",
    "deferred",
    "retrying",
    "delivered",
    "dead_letter",
    "skipped",
]
TargetState = Literal["pending", "deferred", "retrying", "delivered", "dead_letter", "skipped"]


class LinkOutcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What offload did with one link: copied to R2, or kept the source (and why)."""

    provider: str
    source_url: str
    r2: bool
    reason: str | None = None
    unknown_shape: bool = False


class DeliveryAttempt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One HTTP attempt to one target, as sent and as answered (secrets removed)."""

    webhook_id: str
    target: str  # the target's name: "default", "rule: <name>"
    url: str  # masked
    attempt: int
    outcome: str  # success | retry | fail | gone
    request_headers: dict[str, str] = {}
    payload: str = ""  # the body, truncated
    payload_bytes: int = 0
    status_code: int | None = None
    response_headers: dict[str, str] = {}
    response_snippet: str = ""
    error: str | None = None
    duration_ms: int = 0


class TimelineEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One step of an email's way through the pipeline."""

    at: float
    kind: Literal[
        "received",
        "parsed",
        "skipped",
        "offloaded",
        "deferred",
        "attempt",
        "delivered",
        "retrying",
        "dead_letter",
        "retry_requested",
        "dropped",
    ]
    service: str
    reason: str | None = None
    source: str | None = None
    size: int | None = None
    detector: str | None = None
    links: list[LinkOutcome] | None = None
    webhook_id: str | None = None
    target: str | None = None
    until: float | None = None
    attempt: DeliveryAttempt | None = None


class TargetHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How deliveries to one target are going (written by notify after every attempt)."""

    name: str
    url: str  # masked
    target_class: TargetClass
    consecutive_failures: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None
    failing_since: float | None = None


# -- operator tests, run by the service that owns the resource (``common.probes``) ------
ProbeKind = Literal["webhook", "imap", "worker"]


class ProbeRequest(msgspec.Struct, kw_only=True):
    id: str
    kind: ProbeKind
    requested_at: float
    target: str = ""  # webhook: "default" or a routing rule id


class ProbeResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a real attempt met: ``ok``, a ``summary`` line, the exact ``error``, a ``hint``."""

    id: str
    ok: bool
    summary: str
    service: str
    instance: str
    error: str | None = None
    hint: str | None = None
    url: str | None = None  # masked
    status_code: int | None = None
    response_snippet: str | None = None
    duration_ms: int | None = None
