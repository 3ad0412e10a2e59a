"""Notify settings, read once in ``main()`` from the environment.

Variables added by the notify service (defaults in brackets):

* ``WEBHOOK_RETRY_BASE_SECONDS`` [5]: first retry delay; doubles per attempt
  (full jitter), capped by ``WEBHOOK_RETRY_MAX_DELAY_SECONDS`` [3600].
* ``WEBHOOK_MAX_ATTEMPTS`` [0 = only the retry window bounds retries];
  ``processing_prefs.retry_count`` (> 0) wins: attempts = retry_count + 1.
* ``WEBHOOK_RATE_LIMIT_PER_HOUR`` [0 = off]: default for
  ``processing_prefs.rate_limit_per_hour``.
* ``ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS`` [false]: default for the runtime flag.
* ``NOTIFY_SCHEDULER_INTERVAL_SECONDS`` [1.0]: how often due items are polled.
* ``NOTIFY_CONCURRENCY`` [8]: entries / scheduled items handled at once.
* ``MAKE_SCENARIO_IDS`` [""], ``MAKE_API_HOST`` [eu1.make.com],
  ``MAKE_API_BASE_URL`` [https://<MAKE_API_HOST>], ``MAKE_WATCHER_INTERVAL_SECONDS`` [60].
* ``RENDER_SIGNAL_FAULT`` [""]: fault-injection hook for tests
  (``notify.after_send`` kills the process right after a webhook response).
"""

from __future__ import annotations

import msgspec
from render_signal.common.appliedconfig import env_fallbacks
from render_signal.common.configdocs import normalise_time
from render_signal.common.errors import ConfigInvalid
from render_signal.common.records import AppliedValue
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["NotifySettings", "applied_env", "read_settings"]


class NotifySettings(msgspec.Struct, frozen=True, kw_only=True):
    """Delivery defaults; the live rules come from the config store."""

    common: CommonSettings
    webhook_url: str
    signing_secret: str
    makecom_api_key: str
    ssl_verify: bool
    sending_enabled: bool
    delivery_mode: str
    fallback_on_415: bool
    time_start: str
    time_end: str
    retry_window_s: float
    timeout_s: float
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    max_attempts: int = 0
    rate_limit_per_hour: int = 0
    allow_without_links: bool = False
    scheduler_interval_s: float = 1.0
    concurrency: int = 8
    make_scenario_ids: tuple[str, ...] = ()
    make_api_base_url: str = "https://eu1.make.com"
    make_watcher_interval_s: float = 60.0
    fault: str = ""


def read_settings(env: EnvReader) -> NotifySettings:
    common = read_common(env, "notify")
    webhook_url = env.url("WEBHOOK_URL", required=not env.dev_mode, secret=True)
    mode = env.string("WEBHOOK_DELIVERY_MODE", "json").lower()
    if mode not in ("json", "form"):
        env.problems.append("WEBHOOK_DELIVERY_MODE: expected json or form")
        mode = "json"
    make_host = env.string("MAKE_API_HOST", "eu1.make.com")
    start, end = _window(env)
    return NotifySettings(
        common=common,
        webhook_url=webhook_url,
        signing_secret=env.secret("WEBHOOK_SIGNING_SECRET", required=False),
        makecom_api_key=env.secret("MAKECOM_API_KEY", required=False),
        ssl_verify=env.boolean("WEBHOOK_SSL_VERIFY", True),
        sending_enabled=env.boolean("WEBHOOK_SENDING_ENABLED", True),
        delivery_mode=mode,
        fallback_on_415=env.boolean("WEBHOOK_FALLBACK_ON_415", True),
        time_start=start,
        time_end=end,
        retry_window_s=env.number("WEBHOOK_RETRY_WINDOW_SECONDS", 86400.0, minimum=1.0),
        timeout_s=env.number("WEBHOOK_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        retry_base_s=env.number("WEBHOOK_RETRY_BASE_SECONDS", 5.0, minimum=0.0),
        retry_cap_s=env.number("WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600.0, minimum=0.0),
        max_attempts=env.integer("WEBHOOK_MAX_ATTEMPTS", 0, minimum=0),
        rate_limit_per_hour=env.integer("WEBHOOK_RATE_LIMIT_PER_HOUR", 0, minimum=0),
        allow_without_links=env.boolean("ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS", False),
        scheduler_interval_s=env.number("NOTIFY_SCHEDULER_INTERVAL_SECONDS", 1.0, minimum=0.01),
        concurrency=env.integer("NOTIFY_CONCURRENCY", 8, minimum=1, maximum=256),
        make_scenario_ids=env.csv("MAKE_SCENARIO_IDS"),
        make_api_base_url=(
            env.url("MAKE_API_BASE_URL", secret=False) or f"https://{make_host}"
        ).rstrip("/"),
        make_watcher_interval_s=env.number("MAKE_WATCHER_INTERVAL_SECONDS", 60.0, minimum=0.01),
        fault=env.fault_point(),
    )


def _window(env: EnvReader) -> tuple[str, str]:
    """``WEBHOOKS_TIME_START``/``_END`` (legacy ``WEBHOOK_TIME_*``): both or neither, valid."""
    found = {}
    for name, raw in (
        ("WEBHOOKS_TIME_START", env.raw("WEBHOOKS_TIME_START", "WEBHOOK_TIME_START")),
        ("WEBHOOKS_TIME_END", env.raw("WEBHOOKS_TIME_END", "WEBHOOK_TIME_END")),
    ):
        if raw is None:
            continue
        try:
            found[name] = normalise_time(raw[1], raw[0])
        except ConfigInvalid as exc:
            env.problems.append(str(exc))
            return "", ""
    if len(found) == 1:
        env.problems.append("WEBHOOKS_TIME_START/WEBHOOKS_TIME_END: set both (HH:MM) or neither")
        return "", ""
    return found.get("WEBHOOKS_TIME_START", ""), found.get("WEBHOOKS_TIME_END", "")


def applied_env(settings: NotifySettings) -> dict[str, AppliedValue]:
    """The environment values notify falls back on for unset config fields."""
    return env_fallbacks(
        settings.common,
        {
            "WEBHOOK_URL": settings.webhook_url,
            "WEBHOOK_SSL_VERIFY": settings.ssl_verify,
            "WEBHOOK_SENDING_ENABLED": settings.sending_enabled,
            "WEBHOOK_DELIVERY_MODE": settings.delivery_mode,
            "WEBHOOK_FALLBACK_ON_415": settings.fallback_on_415,
            "WEBHOOKS_TIME_START": settings.time_start or None,
            "WEBHOOKS_TIME_END": settings.time_end or None,
            # retry_count = attempts - 1; unset (0) means "until the retry window ends".
            "WEBHOOK_MAX_ATTEMPTS": settings.max_attempts - 1 if settings.max_attempts else None,
            "WEBHOOK_RETRY_BASE_SECONDS": settings.retry_base_s,
            "WEBHOOK_TIMEOUT_SECONDS": settings.timeout_s,
            "WEBHOOK_RATE_LIMIT_PER_HOUR": settings.rate_limit_per_hour,
            "ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS": settings.allow_without_links,
            "MAKE_SCENARIO_IDS": list(settings.make_scenario_ids),
        },
        {
            "WEBHOOKS_TIME_START": ("WEBHOOK_TIME_START",),
            "WEBHOOKS_TIME_END": ("WEBHOOK_TIME_END",),
        },
    )
