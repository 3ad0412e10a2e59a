"""Routing-rule matching (original §6.6), safe against regex denial of service.

Regexes run on google-re2 (linear time, no catastrophic backtracking), compiled
once (``common.configrules.compile_pattern``); a pattern that does not compile
counts as no match, as in the original. Disabled rules never match.
"""

from __future__ import annotations

from collections.abc import Sequence

from render_signal.common.configrules import (
    MAX_REGEX_LEN,
    RoutingRule,
    RuleCondition,
    compile_pattern,
)
from render_signal.common.events import MailOffloaded

__all__ = ["condition_matches", "field_value", "first_matching_rule"]


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


def condition_matches(condition: RuleCondition, event: MailOffloaded) -> bool:
    """One ``{field, operator, value, case_sensitive}`` condition."""
    value = condition.value
    text = field_value(event, condition.field)
    if condition.operator == "regex":
        if len(value) > MAX_REGEX_LEN:
            return False
        compiled = compile_pattern(value, condition.case_sensitive)
        return compiled is not None and compiled.search(text) is not None
    if condition.operator == "contains":
        if condition.case_sensitive:
            return value in text
        return value.lower() in text.lower()
    candidates = {
        "sender": [event.sender_email, event.sender_address],
        "provider": [link.provider for link in event.links],
    }.get(condition.field, [text])

    def norm(s: str) -> str:
        return s.strip() if condition.case_sensitive else s.strip().lower()

    return any(norm(c) == norm(value) for c in candidates)


def first_matching_rule(rules: Sequence[RoutingRule], event: MailOffloaded) -> RoutingRule | None:
    """The first enabled rule whose conditions all match (one with none never matches)."""
    for rule in rules:
        if (
            rule.enabled
            and rule.conditions
            and all(condition_matches(c, event) for c in rule.conditions)
        ):
            return rule
    return None
