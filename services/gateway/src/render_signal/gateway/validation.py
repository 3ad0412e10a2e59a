"""Validation of the runtime configuration documents the gateway writes.

Each ``validate_*`` takes the client's JSON (and the current document where a
partial update is allowed) and returns the document to store, or raises
:class:`ConfigInvalid` with a message fit for a 400.

Choices: times are stored normalised to ``HH:MM`` (``9h00``, ``09h00`` and
``9:00`` are all accepted and stored as ``09:00``); weekday names are stored in
lowercase English; e-mail lists lowercased and de-duplicated in order.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import re2
from render_signal.common.settings import is_loopback_host, is_placeholder_host

__all__ = [
    "DEFAULT_PREFS",
    "DEFAULT_RUNTIME_FLAGS",
    "WEEKDAYS",
    "ConfigInvalid",
    "normalize_time",
    "validate_absence",
    "validate_polling",
    "validate_prefs",
    "validate_routing_rules",
    "validate_runtime_flags",
    "validate_time_window",
    "validate_webhook_config",
    "validate_webhook_url",
]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_RUNTIME_FLAGS: dict[str, bool] = {
    "disable_email_id_dedup": False,
    "allow_custom_webhook_without_links": False,
    "gmail_ingress_enabled": True,
}
DEFAULT_PREFS: dict[str, Any] = {
    "exclude_keywords": [],
    "require_attachments": False,
    "max_email_size_mb": None,
    "sender_priority": {},
    "retry_count": 0,
    "retry_delay_sec": 2,
    "webhook_timeout_sec": 30,
    # 0 = no limit: what notify applies when nothing is stored (the original's 5 never applied).
    "rate_limit_per_hour": 0,
    "notify_on_failure": False,
    "mirror_media_to_custom": True,
}
_PREF_BOUNDS = {
    "retry_count": (0, 10),
    "retry_delay_sec": (0, 600),
    "webhook_timeout_sec": (1, 300),
    "rate_limit_per_hour": (0, 100000),
}
_TIME = re.compile(r"^(\d{1,2})[:hH](\d{2})$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
LEGACY_WEBHOOK_KEYS = frozenset(
    {
        "recadrage_webhook_url",
        "autorepondeur_webhook_url",
        "polling_enabled",
        "global_time_start",
        "global_time_end",
    }
)
MAX_RULES = 200
MAX_REGEX = 200


class ConfigInvalid(ValueError):
    """The submitted configuration is invalid; the message says why."""


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigInvalid(f"{name} must be a boolean")


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ConfigInvalid(f"{name} must be an integer")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ConfigInvalid(f"{name} must be an integer")
    if not low <= value <= high:
        raise ConfigInvalid(f"{name} must be between {low} and {high}")
    return value


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ConfigInvalid("Invalid JSON payload: an object is expected")
    return payload


def normalize_time(value: Any, name: str) -> str:
    """``HHhMM``/``HH:MM`` (hour 0-23, minutes 2 digits) -> ``HH:MM``."""
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ConfigInvalid(f"{name}: invalid time format (expected HH:MM or HHhMM)")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ConfigInvalid(f"{name}: invalid time (hour 0-23, minutes 00-59)")
    return f"{hour:02d}:{minute:02d}"


def validate_time_window(start: Any, end: Any) -> tuple[str | None, str | None]:
    """Both or neither; both empty clears the window."""
    blank_start = start is None or (isinstance(start, str) and not start.strip())
    blank_end = end is None or (isinstance(end, str) and not end.strip())
    if blank_start and blank_end:
        return None, None
    if blank_start or blank_end:
        raise ConfigInvalid("Both start and end are required (or both empty to clear)")
    return normalize_time(start, "start"), normalize_time(end, "end")


def validate_webhook_url(value: Any, *, dev_mode: bool, name: str = "webhook_url") -> str:
    """An https URL to a real host (placeholders always refused; loopback only in dev)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigInvalid(f"{name} must be a non-empty URL")
    url = value.strip()
    if len(url) > 2048 or any(c.isspace() for c in url):
        raise ConfigInvalid(f"{name} is not a valid URL")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError as exc:
        raise ConfigInvalid(f"{name} is not a valid URL") from exc
    if not host:
        raise ConfigInvalid(f"{name} has no host")
    if is_placeholder_host(host):
        raise ConfigInvalid(f"{name}: placeholder host {host} refused")
    loopback = is_loopback_host(host)
    if loopback and not dev_mode:
        raise ConfigInvalid(f"{name}: loopback host refused outside dev mode")
    if parts.scheme != "https" and not (loopback and dev_mode and parts.scheme == "http"):
        raise ConfigInvalid(f"{name} must use https")
    return url


def _days(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ConfigInvalid("absence_pause_days must be a list of weekday names")
    days: list[str] = []
    for item in value:
        name = item.strip().lower() if isinstance(item, str) else None
        if name not in WEEKDAYS:
            raise ConfigInvalid(f"absence_pause_days: invalid day {item!r}")
        if name not in days:
            days.append(name)
    return sorted(days, key=WEEKDAYS.index)


def validate_absence(changes: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Absence fields merged over ``current``; enabling requires at least one day."""
    result: dict[str, Any] = {}
    if "absence_pause_days" in changes:
        result["absence_pause_days"] = _days(changes["absence_pause_days"])
    if "absence_pause_enabled" in changes:
        result["absence_pause_enabled"] = _bool(
            changes["absence_pause_enabled"], "absence_pause_enabled"
        )
    enabled = result.get("absence_pause_enabled", current.get("absence_pause_enabled", False))
    days = result.get("absence_pause_days", current.get("absence_pause_days") or [])
    if enabled and not days:
        raise ConfigInvalid("Enabling Absence Globale requires at least one day")
    return result


def validate_webhook_config(
    payload: Any, current: dict[str, Any], *, dev_mode: bool
) -> dict[str, Any]:
    """A partial update of ``webhook_config``; returns the full new document."""
    changes = _object(payload)
    doc = {k: v for k, v in current.items() if k not in LEGACY_WEBHOOK_KEYS}
    if "webhook_url" in changes:
        url = changes["webhook_url"]
        if url is None or (isinstance(url, str) and not url.strip()):
            doc.pop("webhook_url", None)
        else:
            doc["webhook_url"] = validate_webhook_url(url, dev_mode=dev_mode)
    for key in ("webhook_ssl_verify", "webhook_sending_enabled", "webhook_fallback_on_415"):
        if key in changes:
            doc[key] = _bool(changes[key], key)
    if "webhook_delivery_mode" in changes:
        mode = changes["webhook_delivery_mode"]
        if mode not in ("json", "form"):
            raise ConfigInvalid("webhook_delivery_mode must be 'json' or 'form'")
        doc["webhook_delivery_mode"] = mode
    if "webhook_time_start" in changes or "webhook_time_end" in changes:
        start, end = validate_time_window(
            changes.get("webhook_time_start"), changes.get("webhook_time_end")
        )
        doc["webhook_time_start"], doc["webhook_time_end"] = start, end
    doc.update(validate_absence(changes, doc))
    return doc


def _condition(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigInvalid(f"{where}: a condition must be an object")
    field = raw.get("field")
    operator = raw.get("operator")
    value = raw.get("value")
    if field not in ("sender", "subject", "body", "detector", "provider"):
        raise ConfigInvalid(f"{where}: field must be sender, subject, body, detector or provider")
    if operator not in ("contains", "equals", "regex"):
        raise ConfigInvalid(f"{where}: operator must be contains, equals or regex")
    if not isinstance(value, str) or not value.strip():
        raise ConfigInvalid(f"{where}: a non-empty value is required")
    if operator == "regex":
        if len(value) > MAX_REGEX:
            raise ConfigInvalid(f"{where}: regex longer than {MAX_REGEX} characters")
        try:
            re2.compile(value)
        except re2.error as exc:
            raise ConfigInvalid(f"{where}: invalid regex") from exc
    return {
        "field": field,
        "operator": operator,
        "value": value,
        "case_sensitive": _bool(raw.get("case_sensitive", False), f"{where}.case_sensitive"),
    }


def validate_routing_rules(payload: Any, *, dev_mode: bool) -> dict[str, Any]:
    """The full ``routing_rules`` document from ``{rules: [...], locked?}``."""
    body = _object(payload)
    rules = body.get("rules")
    if not isinstance(rules, list):
        raise ConfigInvalid("rules must be a list")
    if len(rules) > MAX_RULES:
        raise ConfigInvalid(f"at most {MAX_RULES} rules")
    seen: set[str] = set()
    clean: list[dict[str, Any]] = []
    for index, raw in enumerate(rules, start=1):
        where = f"rule {index}"
        if not isinstance(raw, dict):
            raise ConfigInvalid(f"{where}: a rule must be an object")
        raw_id = raw.get("id")
        rule_id = (raw_id.strip()[:100] if isinstance(raw_id, str) else "") or f"rule-{index}"
        base, n = rule_id, 2
        while rule_id in seen:
            rule_id, n = f"{base}-{n}", n + 1
        seen.add(rule_id)
        raw_name = raw.get("name")
        name = raw_name if isinstance(raw_name, str) else ""
        conditions = raw.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise ConfigInvalid(f"{where}: at least one condition is required")
        actions = raw.get("actions")
        if not isinstance(actions, dict):
            raise ConfigInvalid(f"{where}: actions must be an object")
        priority = actions.get("priority", "normal")
        if priority not in ("normal", "high"):
            raise ConfigInvalid(f"{where}: priority must be normal or high")
        rule: dict[str, Any] = {
            "id": rule_id,
            "name": name.strip()[:200] or f"Rule {index}",
            "conditions": [
                _condition(c, f"{where} condition {i}") for i, c in enumerate(conditions, 1)
            ],
            "actions": {
                "webhook_url": validate_webhook_url(
                    actions.get("webhook_url"), dev_mode=dev_mode, name=f"{where}: webhook_url"
                ),
                "priority": priority,
                "stop_processing": _bool(
                    actions.get("stop_processing", False), f"{where}: stop_processing"
                ),
            },
        }
        if "enabled" in raw:
            rule["enabled"] = _bool(raw["enabled"], f"{where}: enabled")
        clean.append(rule)
    doc: dict[str, Any] = {"rules": clean}
    if "locked" in body:
        doc["locked"] = _bool(body["locked"], "locked")
    return doc


def _date(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError as exc:
        raise ConfigInvalid(f"{name} must be an ISO date (YYYY-MM-DD)") from exc


def validate_polling(payload: Any, current: dict[str, Any]) -> dict[str, Any]:
    """A partial update of ``polling_config``."""
    changes = _object(payload)
    doc = dict(current)
    if "active_days" in changes:
        raw = changes["active_days"]
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise ConfigInvalid("active_days must be a list of 0-6")
        days = sorted({_int(d, "active_days", 0, 6) for d in items if str(d).strip() != ""})
        if not days:
            raise ConfigInvalid("active_days needs at least one day (0=Monday ... 6=Sunday)")
        doc["active_days"] = days
    if "active_start_hour" in changes:
        doc["active_start_hour"] = _int(changes["active_start_hour"], "active_start_hour", 0, 23)
    if "active_end_hour" in changes:
        # End is exclusive, so 24 is how "until midnight" is said.
        doc["active_end_hour"] = _int(changes["active_end_hour"], "active_end_hour", 0, 24)
    for key in ("enable_polling", "enable_subject_group_dedup"):
        if key in changes:
            doc[key] = _bool(changes[key], key)
    for key in ("vacation_start", "vacation_end"):
        if key in changes:
            doc[key] = _date(changes[key], key)
    start, end = doc.get("vacation_start"), doc.get("vacation_end")
    if start and end and start > end:
        raise ConfigInvalid("vacation_start must be on or before vacation_end")
    if "sender_of_interest_for_polling" in changes:
        raw = changes["sender_of_interest_for_polling"]
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise ConfigInvalid("sender_of_interest_for_polling must be a list of emails")
        senders: list[str] = []
        for item in items:
            email = item.strip().lower() if isinstance(item, str) else ""
            if not email:
                continue
            if not _EMAIL.match(email):
                raise ConfigInvalid(f"sender_of_interest_for_polling: invalid email {item!r}")
            if email not in senders:
                senders.append(email)
        doc["sender_of_interest_for_polling"] = senders
    return doc


def validate_runtime_flags(payload: Any, current: dict[str, Any]) -> dict[str, Any]:
    """Known flags only, booleans only."""
    changes = _object(payload)
    doc = {k: current.get(k, v) for k, v in DEFAULT_RUNTIME_FLAGS.items()}
    for key in DEFAULT_RUNTIME_FLAGS:
        if key in changes:
            doc[key] = _bool(changes[key], key)
    return doc


def _str_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigInvalid(f"{name} must be a list of strings")
    return [v.strip() for v in value if v.strip()][:500]


def validate_prefs(payload: Any, current: dict[str, Any]) -> dict[str, Any]:
    """A partial update of ``processing_prefs`` with the original's bounds."""
    changes = _object(payload)
    doc = {**DEFAULT_PREFS, **current}
    for key in ("exclude_keywords", "exclude_keywords_recadrage", "exclude_keywords_autorepondeur"):
        if key in changes:
            doc[key] = _str_list(changes[key], key)
    for key in ("require_attachments", "notify_on_failure", "mirror_media_to_custom"):
        if key in changes:
            doc[key] = _bool(changes[key], key)
    for key, (low, high) in _PREF_BOUNDS.items():
        if key in changes:
            doc[key] = _int(changes[key], key, low, high)
    if "max_email_size_mb" in changes:
        value = changes["max_email_size_mb"]
        doc["max_email_size_mb"] = (
            None if value in (None, "") else _int(value, "max_email_size_mb", 1, 10_000)
        )
    if "sender_priority" in changes:
        value = changes["sender_priority"]
        if not isinstance(value, dict):
            raise ConfigInvalid("sender_priority must be an object {email: high|medium|low}")
        priorities: dict[str, str] = {}
        for email, level in value.items():
            if not isinstance(email, str) or not _EMAIL.match(email.strip().lower()):
                raise ConfigInvalid(f"sender_priority: invalid email {email!r}")
            if level not in ("high", "medium", "low"):
                raise ConfigInvalid("sender_priority values must be high, medium or low")
            priorities[email.strip().lower()] = level
        doc["sender_priority"] = priorities
    return doc
