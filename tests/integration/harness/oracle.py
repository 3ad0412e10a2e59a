"""The no-loss checker (docs: reliability §1.8): what went in vs what the receiver got.

History in: :class:`~.mail.Sent` per email (unique marker). History out: every
request the receiver got (:class:`~render_signal.devstack.receiver.Recorded`). Faults: when each was
injected. After the drain the checker reports:

* lost -- an email handed over (APPEND OK / 202) with no 2xx delivery;
* without content -- a delivery whose ``email_content`` lacks the email's
  marker (the bodies lost on the way, e.g. a job sent from an incomplete record);
* duplicates -- a webhook-id accepted more than once. A duplicate is
  *explained* when a crash (SIGKILL of a service or of Redis) happened between
  the first accepted delivery (minus a small slack) and the duplicate; it is
  then counted under that crash. Anything else is *unexplained* (a bug: e.g.
  a duplicate after a normal SIGTERM restart).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from render_signal.devstack.receiver import Recorded

from .fakes import marker_of
from .mail import Sent

__all__ = ["Fault", "Report", "check"]

CRASH_SLACK_S = 2.0


@dataclass
class Fault:
    kind: str  # e.g. "sigkill:notify", "restart:notify", "redis_kill", "worker_down"
    at: float
    until: float | None = None

    @property
    def is_crash(self) -> bool:
        return self.kind.startswith("sigkill:") or self.kind == "redis_kill"


@dataclass
class Report:
    emails_in: int
    by_channel: dict[str, int]
    delivered: int
    lost: list[str]
    unexpected: list[str]
    duplicates_by_cause: dict[str, int]
    unexplained_duplicates: list[str]
    split_ids: list[str]
    without_content: list[str]
    receiver_answers: dict[int, int]
    faults: dict[str, int]
    latency_s: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"emails in: {self.emails_in} {dict(self.by_channel)}",
            f"delivered: {self.delivered}",
            f"lost: {len(self.lost)} {self.lost[:10]}",
            f"unexpected deliveries: {len(self.unexpected)}",
            f"duplicates after a crash (allowed), by cause: {dict(self.duplicates_by_cause)}"
            f" total {sum(self.duplicates_by_cause.values())}",
            f"unexplained duplicates: {len(self.unexplained_duplicates)}"
            f" {self.unexplained_duplicates[:10]}",
            f"emails with more than one webhook-id: {len(self.split_ids)}",
            f"deliveries without the email's text: {len(self.without_content)}"
            f" {self.without_content[:10]}",
            f"receiver answers: {dict(sorted(self.receiver_answers.items()))}",
            "faults injected: " + ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
        ]
        if self.latency_s:
            out.append(
                "in -> receiver latency: "
                + ", ".join(f"{k} {v:.2f}s" for k, v in self.latency_s.items())
            )
        return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _lacks_content(delivery: Recorded, marker: str) -> bool:
    """The test emails carry their marker in the body too (a link's file name)."""
    payload = delivery.json
    content = payload.get("email_content") if isinstance(payload, dict) else None
    return not isinstance(content, str) or marker not in content


def check(sent: list[Sent], deliveries: list[Recorded], faults: list[Fault]) -> Report:
    markers = {s.marker for s in sent}
    accepted = [d for d in deliveries if d.accepted]
    by_id: dict[str, list[Recorded]] = defaultdict(list)
    ids_by_marker: dict[str, set[str]] = defaultdict(set)
    first_by_marker: dict[str, Recorded] = {}
    without_content: list[str] = []
    for d in sorted(accepted, key=lambda x: x.at):
        by_id[d.webhook_id].append(d)
        if marker := marker_of(d):
            ids_by_marker[marker].add(d.webhook_id)
            first_by_marker.setdefault(marker, d)
            if _lacks_content(d, marker):
                without_content.append(marker)
    crashes = sorted((f for f in faults if f.is_crash), key=lambda f: f.at)
    dup_causes: Counter[str] = Counter()
    unexplained: list[str] = []
    for webhook_id, group in by_id.items():
        first = group[0]
        for dup in group[1:]:
            window = [c for c in crashes if first.at - CRASH_SLACK_S <= c.at <= dup.at]
            if window:
                dup_causes[window[-1].kind] += 1
            else:
                unexplained.append(f"{marker_of(dup) or webhook_id}")
    latencies = [first_by_marker[s.marker].at - s.at for s in sent if s.marker in first_by_marker]
    latency: dict[str, Any] = {}
    if latencies:
        latency = {
            "p50": statistics.median(latencies),
            "p99": _percentile(latencies, 0.99),
            "max": max(latencies),
        }
    return Report(
        emails_in=len(sent),
        by_channel=dict(Counter(s.channel for s in sent)),
        delivered=len(markers & first_by_marker.keys()),
        lost=sorted(markers - first_by_marker.keys()),
        unexpected=sorted(first_by_marker.keys() - markers),
        duplicates_by_cause=dict(dup_causes),
        unexplained_duplicates=unexplained,
        split_ids=sorted(m for m, ids in ids_by_marker.items() if len(ids) > 1),
        without_content=without_content,
        receiver_answers=dict(Counter(d.status for d in deliveries)),
        faults=dict(Counter(f.kind for f in faults)),
        latency_s=latency,
    )
