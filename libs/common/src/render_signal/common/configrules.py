"""The structs of one routing rule (``routing_rules.rules[]``), validated on decode.

A rule sends the emails matching ALL its conditions to its own target. Regexes
are compiled with google-re2 (linear time: an operator's pattern can't hang
notify) and capped at :data:`MAX_REGEX_LEN` characters, as the original did.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import msgspec
import re2
from msgspec import Meta
from render_signal.common.errors import ConfigInvalid
from render_signal.common.urls import target_url_problem

__all__ = [
    "MAX_REGEX_LEN",
    "RoutingRule",
    "RuleActions",
    "RuleCondition",
    "compile_pattern",
]

MAX_REGEX_LEN = 200
ConditionField = Literal["sender", "subject", "body", "detector", "provider"]


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, case_sensitive: bool) -> Any:
    """The re2 pattern, or None when it does not compile (then it never matches).

    (``Any``: google-re2 ships no type information.)
    """
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error:
        return None


class RuleCondition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``field`` ``operator`` ``value``; case-insensitive unless ``case_sensitive``."""

    field: ConditionField
    operator: Literal["contains", "equals", "regex"]
    value: Annotated[str, Meta(min_length=1, max_length=1000)]
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        if not self.value.strip():
            raise ConfigInvalid("value: a non-empty value is required")
        if self.operator == "regex":
            if len(self.value) > MAX_REGEX_LEN:
                raise ConfigInvalid(f"value: regex longer than {MAX_REGEX_LEN} characters")
            if compile_pattern(self.value, self.case_sensitive) is None:
                raise ConfigInvalid("value: invalid regex (re2 syntax)")


class RuleActions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a matching email goes, and how that target is treated."""

    webhook_url: Annotated[str, Meta(max_length=2048)]
    priority: Literal["normal", "high"] = "normal"
    stop_processing: bool = False
    #: The original's strict receiver contract: only a 200 with JSON ``success: true``
    #: counts as delivered.
    require_success_true: bool = False
    #: Any 2xx counts as delivered, even a JSON reply saying ``success: false``
    #: (by default that reply is a failure, retried: what the original's receiver
    #: answers on an application error).
    accept_any_2xx: bool = False
    #: Overrides ``webhook_config.outside_window_policy`` for this target.
    outside_window_policy: Literal["defer", "drop"] | None = None

    def __post_init__(self) -> None:
        problem = target_url_problem(self.webhook_url)
        if problem:
            raise ConfigInvalid(f"webhook_url: {problem}")
        if self.require_success_true and self.accept_any_2xx:
            raise ConfigInvalid(
                "accept_any_2xx: contradicts require_success_true (choose one receiver contract)"
            )


class RoutingRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One rule; ids and names missing on input are filled in by ``RoutingRules``."""

    conditions: Annotated[list[RuleCondition], Meta(min_length=1, max_length=20)]
    actions: RuleActions
    id: Annotated[str, Meta(max_length=100)] = ""
    name: Annotated[str, Meta(max_length=200)] = ""
    enabled: bool = True
