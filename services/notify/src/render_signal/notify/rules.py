"""Routing-rule matching (original §6.6), safe against regex denial of service.

Regexes run on google-re2 (linear time, no catastrophic backtracking) and
are capped at :data:`MAX_REGEX_LEN` characters; a pattern that does not
compile counts as no match, as in the original.
"""

from __future__ import annotations

import functools
from typing import Any

import re2
from render_signal.common.events import MailOffloaded

__all__ = ["MAX_REGEX_LEN", "condition_matches", "field_value", "first_matching_rule"]

MAX_REGEX_LEN = 200
FIELDS = ("sender", "subject", "body", "detector", "provider")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error:
        return None


def field_value(event: MailOffloaded, field: str) -> str:
    """The text a condition on ``field`` is matched against."""
    if field == "sender":
        return f"{event.sender_email} {event.sender_address}".strip()
    if field == "subject":
        return event.subject
    if field == "body":
        return event.body_text or event.body_html
    if field == "detector":
        return event.detector or ""
    if field == "provider":
        return " ".join(link.provider for link in event.links)
    return ""


def condition_matches(condition: dict[str, Any], event: MailOffloaded) -> bool:
    """One ``{field, operator, value, case_sensitive}`` condition."""
    field = str(condition.get("field", ""))
    operator = str(condition.get("operator", ""))
    value = str(condition.get("value", ""))
    case_sensitive = bool(condition.get("case_sensitive", False))
    if field not in FIELDS or not value:
        return False
    text = field_value(event, field)
    if operator == "regex":
        if len(value) > MAX_REGEX_LEN:
            return False
        compiled = _compile(value, case_sensitive)
        return compiled is not None and compiled.search(text) is not None
    if operator == "contains":
        return value in text if case_sensitive else value.lower() in text.lower()
    if operator == "equals":
        candidates = {
            "sender": [event.sender_email, event.sender_address],
            "provider": [link.provider for link in event.links],
        }.get(field, [text])

        def norm(s: str) -> str:
            return s.strip() if case_sensitive else s.strip().lower()

        return any(norm(c) == norm(value) for c in candidates)
    return False


def first_matching_rule(rules: list[Any], event: MailOffloaded) -> dict[str, Any] | None:
    """The first rule whose conditions all match (a rule with none never matches)."""
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        conditions = rule.get("conditions") or []
        if not isinstance(conditions, list) or not conditions:
            continue
        if all(isinstance(c, dict) and condition_matches(c, event) for c in conditions):
            return rule
    return None
