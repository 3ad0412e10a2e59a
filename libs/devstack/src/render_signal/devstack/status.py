"""``render-signal status``: the stack's verdict and its problems, then the details.

The verdict is ``common.health.assess`` -- the same one the dashboard's
headline shows -- so the two never disagree; this module only waits and renders.
"""

from __future__ import annotations

import asyncio
import time

from render_signal.common.health import StatusReport, assess
from render_signal.common.keys import Keys
from render_signal.common.redisclient import create_redis
from render_signal.common.timefmt import iso

__all__ = ["render_status", "wait_for_status"]


async def wait_for_status(url: str, prefix: str, wait_s: float) -> StatusReport:
    """The report once the verdict is ``ok``, or as it is after ``wait_s``.

    Not a failure at the deadline: the caller shows what is wrong.
    """
    redis = create_redis(url)
    keys = Keys(prefix)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            report = await assess(redis, keys)
            if report.verdict == "ok" or time.monotonic() >= deadline:
                return report
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()


def _ago(now: float, moment: float | None) -> str:
    return "never" if moment is None else f"{now - moment:.0f}s ago"


def render_status(report: StatusReport) -> str:
    """Human-readable: the verdict and problems first, then services, targets, streams."""
    now = report.checked_at
    lines = [f"VERDICT: {report.verdict.upper()}"]
    for problem in report.problems:
        since = f" (since {iso(problem.since)})" if problem.since else ""
        lines.append(f"  [{problem.level}] {problem.message}{since}")
    lines += ["", "SERVICE   STATE    INSTANCE                       PID      LAST SEEN"]
    for service in report.services:
        if not service.instances:
            lines.append(
                f"{service.service:<9} {service.state.upper():<8} {'-':<30} {'-':<8} "
                f"{_ago(now, service.last_seen)}"
            )
        for instance in service.instances:
            state = "up" if instance.alive else "STALLED"
            lines.append(
                f"{service.service:<9} {state:<8} {instance.instance[:30]:<30} "
                f"{instance.pid or '-'!s:<8} {_ago(now, instance.last_seen)}"
            )
    if report.targets:
        lines += ["", "TARGET                         FAILURES  LAST SUCCESS   LAST ERROR"]
        for target in report.targets:
            lines.append(
                f"{target.name[:30]:<30} {target.consecutive_failures:>8}  "
                f"{_ago(now, target.last_success_at):<13}  {target.last_error or '-'}"
            )
    lines += ["", "STREAM           LENGTH  DLQ  GROUP     PENDING  LAG"]
    for stream in report.streams:
        if not stream.groups:
            lines.append(f"{stream.stream:<16} {stream.length:>6} {stream.dead_letters:>4}  -")
        for group in stream.groups:
            lag = "?" if group.lag is None else group.lag
            lines.append(
                f"{stream.stream:<16} {stream.length:>6} {stream.dead_letters:>4}  "
                f"{group.name:<9} {group.pending:>7}  {lag}"
            )
    return "\n".join(lines)
