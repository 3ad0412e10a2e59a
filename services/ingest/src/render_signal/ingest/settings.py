"""Ingest settings, read once in ``main()`` from the environment."""

from __future__ import annotations

import msgspec
from render_signal.common.appliedconfig import env_fallbacks
from render_signal.common.records import AppliedValue
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["IngestSettings", "applied_env", "imap_gate", "read_settings"]


class IngestSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the ingest service needs. IMAP is optional (HTTP ingress works alone)."""

    common: CommonSettings
    imap_enabled: bool
    imap_server: str
    imap_port: int
    imap_use_ssl: bool
    imap_starttls: bool
    imap_mailbox: str
    email_address: str
    email_password: str
    imap_timeout_s: float
    polling_interval_s: float
    idle_renew_s: float
    lock_ttl_s: float
    mark_seen: bool
    max_email_bytes: int
    max_html_bytes: int
    max_text_bytes: int
    max_parse_bytes: int
    dedup_ttl_s: int
    sender_allowlist: tuple[str, ...]
    skip_reply_prefixes: bool
    imap_ca_file: str = ""
    imap_use_idle: bool = True
    imap_initial_sync: str = "unseen"
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    inactive_check_s: float = 5.0
    fault_point: str = ""
    polling_active_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    polling_start_hour: int = 0
    polling_end_hour: int = 24
    dedup_disabled: bool = False
    dedup_tolerance_s: float = 900.0
    #: Why the IMAP watcher is on or off (logged at start), see :func:`imap_gate`.
    imap_gate_reason: str = ""


def read_settings(env: EnvReader) -> IngestSettings:
    common = read_common(env, "ingest")
    imap_server = env.string("IMAP_SERVER")
    imap_enabled, gate_reason = imap_gate(env)
    if imap_enabled:
        address = env.required("EMAIL_ADDRESS", why="IMAP_SERVER is set")
        password = env.secret("EMAIL_PASSWORD")
    else:
        address, password = (
            env.string("EMAIL_ADDRESS"),
            env.secret("EMAIL_PASSWORD", required=False),
        )
    use_ssl = env.boolean("IMAP_USE_SSL", True)
    starttls = env.boolean("IMAP_STARTTLS", False)
    plaintext = imap_enabled and not use_ssl and not starttls
    if plaintext and not env.dev_mode and not env.boolean("IMAP_ALLOW_PLAINTEXT", False):
        env.problems.append(
            "IMAP_USE_SSL: plain IMAP refused outside dev mode"
            " (set IMAP_STARTTLS=true, or IMAP_ALLOW_PLAINTEXT=true to insist)"
        )
    idle_renew_s = env.number("IMAP_IDLE_RENEW_SECONDS", 540.0, minimum=1.0)
    if idle_renew_s >= 600:
        env.problems.append("IMAP_IDLE_RENEW_SECONDS: must be < 600 (re-issue IDLE within 10 min)")
        idle_renew_s = 540.0
    initial_sync = env.string("IMAP_INITIAL_SYNC", "unseen").lower()
    if initial_sync not in ("unseen", "all", "new"):
        env.problems.append("IMAP_INITIAL_SYNC: expected unseen, all or new")
        initial_sync = "unseen"
    fault_point = env.fault_point()
    days = _weekday_numbers(env)
    return IngestSettings(
        common=common,
        imap_enabled=imap_enabled,
        imap_server=imap_server,
        imap_port=env.integer("IMAP_PORT", 993 if use_ssl else 143, minimum=1, maximum=65535),
        imap_use_ssl=use_ssl,
        imap_starttls=starttls,
        imap_mailbox=env.string("IMAP_MAILBOX", "INBOX"),
        email_address=address,
        email_password=password,
        imap_timeout_s=env.number("IMAP_TIMEOUT_SECONDS", 30.0, minimum=1.0),
        polling_interval_s=env.number("EMAIL_POLLING_INTERVAL_SECONDS", 30.0, minimum=0.1),
        idle_renew_s=idle_renew_s,
        lock_ttl_s=env.number("POLLER_LOCK_TTL_SECONDS", 300.0, minimum=1.0),
        mark_seen=env.boolean("IMAP_MARK_SEEN", True),
        max_email_bytes=env.integer("MAX_EMAIL_BYTES", 25 * 1024 * 1024, minimum=1024),
        max_html_bytes=env.integer("MAX_HTML_BYTES", 1024 * 1024, minimum=1024),
        max_text_bytes=env.integer("MAX_TEXT_BYTES", 1024 * 1024, minimum=1024),
        max_parse_bytes=env.integer("MAX_PARSE_BYTES", 10 * 1024 * 1024, minimum=64 * 1024),
        dedup_ttl_s=env.integer("EMAIL_DEDUP_TTL_SECONDS", 30 * 86400, minimum=60),
        sender_allowlist=tuple(
            s.lower() for s in env.csv("SENDER_OF_INTEREST_FOR_POLLING", "GMAIL_SENDER_ALLOWLIST")
        ),
        skip_reply_prefixes=env.boolean("SKIP_REPLY_PREFIXES", True),
        imap_ca_file=env.string("IMAP_SSL_CA_FILE"),
        imap_use_idle=env.boolean("IMAP_USE_IDLE", True),
        imap_initial_sync=initial_sync,
        reconnect_base_s=env.number("IMAP_RECONNECT_BASE_SECONDS", 1.0, minimum=0.01),
        reconnect_max_s=env.number("IMAP_RECONNECT_MAX_SECONDS", 60.0, minimum=0.01),
        inactive_check_s=env.number("POLLING_INACTIVE_CHECK_INTERVAL_SECONDS", 5.0, minimum=0.05),
        fault_point=fault_point,
        polling_active_days=days,
        polling_start_hour=env.integer("POLLING_ACTIVE_START_HOUR", 0, minimum=0, maximum=23),
        polling_end_hour=env.integer("POLLING_ACTIVE_END_HOUR", 24, minimum=0, maximum=24),
        dedup_disabled=env.boolean("DISABLE_EMAIL_ID_DEDUP", False),
        dedup_tolerance_s=env.number("EMAIL_DEDUP_DATE_TOLERANCE_SECONDS", 900.0, minimum=0.0),
        imap_gate_reason=gate_reason,
    )


def imap_gate(env: EnvReader) -> tuple[bool, str]:
    """Whether the IMAP watcher runs, and why. First match wins:

    1. ``IMAP_SERVER`` unset: off (HTTP ingress only);
    2. ``DISABLE_BACKGROUND_TASKS`` true: off (the original's override);
    3. ``IMAP_ENABLED`` set: its value;
    4. ``ENABLE_BACKGROUND_TASKS`` set: its value (the original's switch);
    5. otherwise on.
    """
    if not env.string("IMAP_SERVER"):
        return False, "IMAP_SERVER is not set"
    if env.boolean("DISABLE_BACKGROUND_TASKS", False):
        return False, "DISABLE_BACKGROUND_TASKS is set"
    if env.raw("IMAP_ENABLED") is not None:
        on = env.boolean("IMAP_ENABLED", True)
        return on, f"IMAP_ENABLED={str(on).lower()}"
    if env.raw("ENABLE_BACKGROUND_TASKS") is not None:
        on = env.boolean("ENABLE_BACKGROUND_TASKS", True)
        return on, f"ENABLE_BACKGROUND_TASKS={str(on).lower()}"
    return True, "IMAP_SERVER is set (ENABLE_BACKGROUND_TASKS and IMAP_ENABLED unset)"


def _weekday_numbers(env: EnvReader) -> tuple[int, ...]:
    """``POLLING_ACTIVE_DAYS``: comma-separated 0-6 (0 = Monday); default every day."""
    every_day = (0, 1, 2, 3, 4, 5, 6)
    found = env.raw("POLLING_ACTIVE_DAYS")
    if found is None:
        return every_day
    parts = [p.strip() for p in found[1].split(",") if p.strip()]
    if not parts or not all(p.isdigit() and 0 <= int(p) <= 6 for p in parts):
        env.problems.append(
            f"POLLING_ACTIVE_DAYS: expected comma-separated days 0-6 (0 = Monday), got {found[1]!r}"
        )
        return every_day
    return tuple(sorted({int(p) for p in parts}))


def applied_env(settings: IngestSettings) -> dict[str, AppliedValue]:
    """The environment values ingest falls back on for unset config fields."""
    return env_fallbacks(
        settings.common,
        {
            "POLLING_ACTIVE_DAYS": list(settings.polling_active_days),
            "POLLING_ACTIVE_START_HOUR": settings.polling_start_hour,
            "POLLING_ACTIVE_END_HOUR": settings.polling_end_hour,
            "SENDER_OF_INTEREST_FOR_POLLING": list(settings.sender_allowlist),
            "DISABLE_EMAIL_ID_DEDUP": settings.dedup_disabled,
        },
        {"SENDER_OF_INTEREST_FOR_POLLING": ("GMAIL_SENDER_ALLOWLIST",)},
    )
