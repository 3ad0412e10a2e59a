"""Who receives one email: the matched routing rule's target, then the default target.

A target is a :class:`Target`: its role (the ``default`` target, or a ``rule``'s
own target), its URL when the job was created, class (``make`` for
``*.make.com``, ``rule``, ``custom``) and the options that travel with it.

The webhook-id is fixed per email and target *role* (:meth:`Target.key`), and
the URL is resolved again from the configuration at every attempt
(:func:`current_target`): fixing a target's URL and retrying (or replaying a
dead letter) reaches the new URL with the same webhook-id, the receiver's
idempotency key.

Receiver contract (``delivery``): by default a 2xx is delivered unless its body
is a JSON object saying ``success: false`` (the original's PHP receiver on an
application error), which is a failure, retried then dead-lettered. A body that
is not JSON ("Accepted" from Make) stays a success. ``accept_any_2xx`` counts
every 2xx; a rule's ``require_success_true`` wants the original's 200 +
``success: true``. Both are read with the rest of the target at every attempt.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from render_signal.common.events import MailOffloaded
from render_signal.common.urls import host_of, target_url_problem
from render_signal.notify.liveconfig import LiveConfig
from render_signal.notify.rules import first_matching_rule

__all__ = [
    "Target",
    "TargetClass",
    "current_target",
    "is_make_url",
    "resolve_targets",
    "usable_url",
]

TargetClass = Literal["make", "custom", "rule"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook receiver for one email."""

    url: str
    target_class: TargetClass
    role: Literal["default", "rule"] = "default"
    name: str = "default"
    priority: str = "normal"
    policy: Literal["defer", "drop"] | None = None
    require_success_true: bool = False
    accept_any_2xx: bool = False
    rule_id: str | None = None

    def key(self) -> str:
        """What the webhook-id is derived from: the role, not the (changeable) URL."""
        return f"rule:{self.rule_id}" if self.role == "rule" else "default"


def is_make_url(url: str) -> bool:
    host = host_of(url)
    return host == "make.com" or host.endswith(".make.com")


def usable_url(url: str) -> bool:
    """An http(s) URL whose host is not a placeholder (the 2026-08-11 incident)."""
    return bool(url) and target_url_problem(url) is None


def _classify(url: str, from_rule: bool) -> TargetClass:
    if is_make_url(url):
        return "make"
    return "rule" if from_rule else "custom"


def _default(config: LiveConfig) -> Target:
    url = config.default_url if usable_url(config.default_url) else ""
    return Target(url=url, target_class=_classify(url, False), accept_any_2xx=config.accept_any_2xx)


def _rule_target(config: LiveConfig, rule_id: str) -> Target | None:
    rule = next((r for r in config.rules if r.id == rule_id), None)
    if rule is None or not usable_url(rule.actions.webhook_url):
        return None
    actions = rule.actions
    return Target(
        url=actions.webhook_url,
        target_class=_classify(actions.webhook_url, True),
        role="rule",
        name=f"rule: {rule.name}",
        priority=actions.priority,
        policy=actions.outside_window_policy,
        require_success_true=actions.require_success_true,
        accept_any_2xx=actions.accept_any_2xx,
        rule_id=rule.id,
    )


def current_target(target: Target, config: LiveConfig) -> Target:
    """``target`` as the configuration describes it now (a deleted rule keeps its last URL)."""
    if target.role == "default":
        return _default(config)
    return _rule_target(config, target.rule_id or "") or target


def resolve_targets(event: MailOffloaded, config: LiveConfig) -> list[Target]:
    """Matched rule target first, then the default unless stop_processing; no duplicates.

    The default target is always there (with an empty URL when none is
    configured yet: the job then waits for one).
    """
    targets: list[Target] = []
    rule = first_matching_rule(config.rules, event)
    stop = False
    if rule is not None:
        stop = rule.actions.stop_processing
        matched = _rule_target(config, rule.id)
        if matched is not None:
            targets.append(matched)
    default = _default(config)
    if not stop and all(t.url != default.url for t in targets):
        targets.append(default)
    return targets
