"""Ingest settings, read once in ``main()`` from the environment."""

from __future__ import annotations

import msgspec
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["IngestSettings", "read_settings"]


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
    dedup_ttl_s: int
    sender_allowlist: tuple[str, ...]
    skip_reply_prefixes: bool


def read_settings(env: EnvReader) -> IngestSettings:
    common = read_common(env, "ingest")
    imap_server = env.string("IMAP_SERVER")
    imap_enabled = bool(imap_server) and env.boolean("IMAP_ENABLED", True)
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
        idle_renew_s=env.number("IMAP_IDLE_RENEW_SECONDS", 540.0, minimum=1.0),
        lock_ttl_s=env.number("POLLER_LOCK_TTL_SECONDS", 300.0, minimum=1.0),
        mark_seen=env.boolean("IMAP_MARK_SEEN", True),
        max_email_bytes=env.integer("MAX_EMAIL_BYTES", 25 * 1024 * 1024, minimum=1024),
        max_html_bytes=env.integer("MAX_HTML_BYTES", 1024 * 1024, minimum=1024),
        dedup_ttl_s=env.integer("EMAIL_DEDUP_TTL_SECONDS", 30 * 86400, minimum=60),
        sender_allowlist=tuple(
            s.lower() for s in env.csv("SENDER_OF_INTEREST_FOR_POLLING", "GMAIL_SENDER_ALLOWLIST")
        ),
        skip_reply_prefixes=env.boolean("SKIP_REPLY_PREFIXES", True),
    )
