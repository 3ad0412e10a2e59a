"""Who receives one email: the matched routing rule's target, then the default target.

A target is a :class:`Target`: its URL, class (``make`` for ``*.make.com``,
``rule`` for a rule's own target, ``custom`` for the default) and the options
that travel with it (priority, window policy, receiver contract).

Receiver contract (``delivery``): by default a 2xx is delivered unless its body
is a JSON object saying ``success: false`` (the original's PHP receiver on an
application error), which is a failure, retried then dead-lettered. A body that
is not JSON ("Accepted" from Make) stays a success. ``accept_any_2xx`` counts
every 2xx; a rule's ``require_success_true`` wants the original's 200 +
``success: true``.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from render_signal.common.events import MailOffloaded
from render_signal.common.urls import host_of, target_url_problem
from render_signal.notify.liveconfig import LiveConfig
from render_signal.notify.rules import first_matching_rule

__all__ = ["Target", "TargetClass", "is_make_url", "resolve_targets", "usable_url"]

TargetClass = Literal["make", "custom", "rule"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook receiver for one email."""

    url: str
    target_class: TargetClass
    priority: str = "normal"
    policy: Literal["defer", "drop"] | None = None
    require_success_true: bool = False
    accept_any_2xx: bool = False
    rule_id: str | None = None


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


def resolve_targets(event: MailOffloaded, config: LiveConfig) -> list[Target]:
    """Matched rule target first, then the default unless stop_processing; no duplicates."""
    targets: list[Target] = []
    rule = first_matching_rule(config.rules, event)
    stop = False
    if rule is not None:
        actions = rule.actions
        stop = actions.stop_processing
        if usable_url(actions.webhook_url):
            targets.append(
                Target(
                    url=actions.webhook_url,
                    target_class=_classify(actions.webhook_url, True),
                    priority=actions.priority,
                    policy=actions.outside_window_policy,
                    require_success_true=actions.require_success_true,
                    accept_any_2xx=actions.accept_any_2xx,
                    rule_id=rule.id or None,
                )
            )
    default = config.default_url
    if not stop and usable_url(default) and all(t.url != default for t in targets):
        targets.append(
            Target(
                url=default,
                target_class=_classify(default, False),
                accept_any_2xx=config.accept_any_2xx,
            )
        )
    return targets
