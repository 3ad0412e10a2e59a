"""The configuration notify applies: config-store documents over the environment.

Read once per decision (cached by the ConfigWatcher) from ``webhook_config``,
``routing_rules``, ``processing_prefs``, ``runtime_flags`` and ``make_config``;
every field the dashboard has not set falls back to the value of its variable
in :class:`~render_signal.notify.settings.NotifySettings` (``configdocs.pick``).
"""

from __future__ import annotations

import msgspec
from render_signal.common.configdocs import (
    MakeConfig,
    ProcessingPrefs,
    RoutingRules,
    RuntimeFlags,
    WebhookConfig,
    pick,
)
from render_signal.common.configrules import RoutingRule
from render_signal.common.configstore import ConfigWatcher
from render_signal.notify.settings import NotifySettings
from render_signal.notify.window import GateConfig, weekday_numbers

__all__ = ["LIVE_DOCUMENTS", "LiveConfig", "load_live_config"]

LIVE_DOCUMENTS = (WebhookConfig, RoutingRules, ProcessingPrefs, RuntimeFlags, MakeConfig)


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything notify needs for one decision, resolved once per item."""

    gate: GateConfig
    default_url: str
    #: The default target's receiver contract (``webhook_accept_any_2xx``).
    accept_any_2xx: bool
    ssl_verify: bool
    delivery_mode: str
    fallback_on_415: bool
    rate_limit_per_hour: int
    timeout_s: float
    max_attempts: int
    retry_base_s: float
    allow_without_links: bool
    rules: tuple[RoutingRule, ...]
    scenario_ids: tuple[str, ...]


async def load_live_config(watcher: ConfigWatcher, settings: NotifySettings) -> LiveConfig:
    """Merge the config-store documents over the env defaults."""
    web = (await watcher.get(WebhookConfig)).doc
    rules = (await watcher.get(RoutingRules)).doc
    prefs = (await watcher.get(ProcessingPrefs)).doc
    flags = (await watcher.get(RuntimeFlags)).doc
    make = (await watcher.get(MakeConfig)).doc
    retry_count = pick(prefs.retry_count, None)
    return LiveConfig(
        gate=GateConfig(
            timezone=settings.common.timezone,
            sending_enabled=pick(web.webhook_sending_enabled, settings.sending_enabled),
            absence_enabled=web.absence_pause_enabled,
            absence_days=weekday_numbers(web.absence_pause_days),
            time_start=pick(web.webhook_time_start, settings.time_start) or "",
            time_end=pick(web.webhook_time_end, settings.time_end) or "",
            policy=web.outside_window_policy,
        ),
        default_url=pick(web.webhook_url, settings.webhook_url),
        accept_any_2xx=web.webhook_accept_any_2xx,
        ssl_verify=pick(web.webhook_ssl_verify, settings.ssl_verify),
        delivery_mode=pick(web.webhook_delivery_mode, settings.delivery_mode),
        fallback_on_415=pick(web.webhook_fallback_on_415, settings.fallback_on_415),
        rate_limit_per_hour=pick(prefs.rate_limit_per_hour, settings.rate_limit_per_hour),
        timeout_s=float(pick(prefs.webhook_timeout_sec, settings.timeout_s)),
        max_attempts=settings.max_attempts if retry_count is None else retry_count + 1,
        retry_base_s=float(pick(prefs.retry_delay_sec, settings.retry_base_s)),
        allow_without_links=pick(
            flags.allow_custom_webhook_without_links, settings.allow_without_links
        ),
        rules=tuple(rules.rules),
        scenario_ids=tuple(pick(make.scenario_ids, list(settings.make_scenario_ids))),
    )
