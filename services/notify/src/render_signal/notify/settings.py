"""Notify settings, read once in ``main()`` from the environment."""

from __future__ import annotations

import msgspec
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["NotifySettings", "read_settings"]


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


def read_settings(env: EnvReader) -> NotifySettings:
    common = read_common(env, "notify")
    webhook_url = env.url("WEBHOOK_URL", required=not env.dev_mode, secret=True)
    mode = env.string("WEBHOOK_DELIVERY_MODE", "json").lower()
    if mode not in ("json", "form"):
        env.problems.append("WEBHOOK_DELIVERY_MODE: expected json or form")
        mode = "json"
    return NotifySettings(
        common=common,
        webhook_url=webhook_url,
        signing_secret=env.secret("WEBHOOK_SIGNING_SECRET", required=False),
        makecom_api_key=env.secret("MAKECOM_API_KEY", required=False),
        ssl_verify=env.boolean("WEBHOOK_SSL_VERIFY", True),
        sending_enabled=env.boolean("WEBHOOK_SENDING_ENABLED", True),
        delivery_mode=mode,
        fallback_on_415=env.boolean("WEBHOOK_FALLBACK_ON_415", True),
        time_start=env.string("WEBHOOKS_TIME_START", "", "WEBHOOK_TIME_START"),
        time_end=env.string("WEBHOOKS_TIME_END", "", "WEBHOOK_TIME_END"),
        retry_window_s=env.number("WEBHOOK_RETRY_WINDOW_SECONDS", 86400.0, minimum=1.0),
        timeout_s=env.number("WEBHOOK_TIMEOUT_SECONDS", 30.0, minimum=0.1),
    )
