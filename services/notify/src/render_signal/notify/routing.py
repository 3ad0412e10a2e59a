"""Effective configuration (config store over env) and target resolution.

Config-store documents read (names below); an absent key falls back to the
environment default from :class:`NotifySettings`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeGuard
from urllib.parse import urlsplit

import msgspec
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.events import MailOffloaded
from render_signal.common.settings import is_placeholder_host
from render_signal.notify.rules import first_matching_rule
from render_signal.notify.settings import NotifySettings
from render_signal.notify.window import GateConfig, weekday_numbers

__all__ = [
    "LIVE_DOCUMENTS",
    "MAKE_CONFIG",
    "PROCESSING_PREFS",
    "ROUTING_RULES",
    "RUNTIME_FLAGS",
    "WEBHOOK_CONFIG",
    "LiveConfig",
    "Target",
    "is_make_url",
    "load_live_config",
    "resolve_targets",
]

WEBHOOK_CONFIG = "webhook_config"
ROUTING_RULES = "routing_rules"
PROCESSING_PREFS = "processing_prefs"
RUNTIME_FLAGS = "runtime_flags"
MAKE_CONFIG = "make_config"
LIVE_DOCUMENTS = (WEBHOOK_CONFIG, ROUTING_RULES, PROCESSING_PREFS, RUNTIME_FLAGS, MAKE_CONFIG)

TargetClass = Literal["make", "custom", "rule"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook receiver for one email."""

    url: str
    target_class: TargetClass
    priority: str = "normal"
    policy: str | None = None
    require_success_true: bool = False
    rule_id: str | None = None


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything notify needs for one decision, resolved once per item."""

    gate: GateConfig
    default_url: str
    ssl_verify: bool
    delivery_mode: str
    fallback_on_415: bool
    rate_limit_per_hour: int
    timeout_s: float
    max_attempts: int
    allow_without_links: bool
    rules: list[Any]
    scenario_ids: tuple[str, ...]


def _get(doc: dict[str, Any], key: str, default: Any) -> Any:
    value = doc.get(key)
    return default if value is None or value == "" else value


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def is_make_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "make.com" or host.endswith(".make.com")


def usable_url(url: Any) -> TypeGuard[str]:
    """An http(s) URL whose host is not a placeholder (the 2026-08-11 incident)."""
    if not isinstance(url, str) or not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and bool(host) and not is_placeholder_host(host)


async def load_live_config(watcher: ConfigWatcher, settings: NotifySettings) -> LiveConfig:
    """Merge the config-store documents over the env defaults."""
    web = (await watcher.get(WEBHOOK_CONFIG)).data
    rules_doc = (await watcher.get(ROUTING_RULES)).data
    prefs = (await watcher.get(PROCESSING_PREFS)).data
    flags = (await watcher.get(RUNTIME_FLAGS)).data
    make = (await watcher.get(MAKE_CONFIG)).data
    policy = str(_get(web, "outside_window_policy", "defer")).lower()
    stored_url = web.get("webhook_url")
    retry_count = prefs.get("retry_count")
    max_attempts = settings.max_attempts
    if isinstance(retry_count, int) and retry_count > 0:
        max_attempts = retry_count + 1
    timeout = prefs.get("webhook_timeout_sec")
    rate = prefs.get("rate_limit_per_hour")
    scenario_ids = make.get("scenario_ids")
    mode = str(_get(web, "webhook_delivery_mode", settings.delivery_mode)).lower()
    return LiveConfig(
        gate=GateConfig(
            timezone=settings.common.timezone,
            sending_enabled=_bool(_get(web, "webhook_sending_enabled", settings.sending_enabled)),
            absence_enabled=_bool(web.get("absence_pause_enabled", False)),
            absence_days=weekday_numbers(web.get("absence_pause_days") or []),
            time_start=str(_get(web, "webhook_time_start", settings.time_start)),
            time_end=str(_get(web, "webhook_time_end", settings.time_end)),
            policy="drop" if policy == "drop" else "defer",
        ),
        default_url=stored_url if usable_url(stored_url) else settings.webhook_url,
        ssl_verify=_bool(_get(web, "webhook_ssl_verify", settings.ssl_verify)),
        delivery_mode=mode if mode in ("json", "form") else "json",
        fallback_on_415=_bool(_get(web, "webhook_fallback_on_415", settings.fallback_on_415)),
        rate_limit_per_hour=int(rate) if isinstance(rate, int) else settings.rate_limit_per_hour,
        timeout_s=float(timeout) if isinstance(timeout, int | float) else settings.timeout_s,
        max_attempts=max_attempts,
        allow_without_links=_bool(
            _get(flags, "allow_custom_webhook_without_links", settings.allow_without_links)
        ),
        rules=list(rules_doc.get("rules") or []),
        scenario_ids=tuple(str(s) for s in scenario_ids)
        if isinstance(scenario_ids, list) and scenario_ids
        else settings.make_scenario_ids,
    )


def _classify(url: str, from_rule: bool) -> TargetClass:
    if is_make_url(url):
        return "make"
    return "rule" if from_rule else "custom"


def resolve_targets(event: MailOffloaded, config: LiveConfig) -> list[Target]:
    """Matched rule target first, then the default unless stop_processing; no duplicates."""
    targets: list[Target] = []
    rule = first_matching_rule(config.rules, event)
    stop = False
    if rule is not None:
        actions = rule.get("actions") or {}
        url = actions.get("webhook_url")
        stop = bool(actions.get("stop_processing", False))
        if usable_url(url):
            policy = actions.get("outside_window_policy")
            targets.append(
                Target(
                    url=url,
                    target_class=_classify(url, True),
                    priority=str(actions.get("priority") or "normal"),
                    policy=policy if policy in ("defer", "drop") else None,
                    require_success_true=bool(actions.get("require_success_true", False)),
                    rule_id=str(rule.get("id") or "") or None,
                )
            )
    default = config.default_url
    if not stop and usable_url(default) and all(t.url != default for t in targets):
        targets.append(Target(url=default, target_class=_classify(default, False)))
    return targets
