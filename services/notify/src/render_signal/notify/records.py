"""What notify writes about an outcome: the webhook-log entry and the dead-letter record.

The log schema is documented in :mod:`render_signal.notify.weblog`; the
dead-letter fields in :mod:`render_signal.notify.deadletters`.
"""

from __future__ import annotations

from typing import Any

from render_signal.common.logs import mask_url
from render_signal.notify.delivery import AttemptResult
from render_signal.notify.jobs import Job, JobQueue
from render_signal.notify.weblog import iso

__all__ = ["build_dead_letter", "build_log_entry"]


def build_log_entry(
    job: Job,
    status: str,
    now: float,
    *,
    result: AttemptResult | None = None,
    reason: str | None = None,
    due: float | None = None,
    status_code: int | None = None,
) -> dict[str, Any]:
    """The entry for ``job`` reaching ``status`` at ``now`` (after ``result``, if any)."""
    entry: dict[str, Any] = {
        "timestamp": iso(now),
        "email_id": job.event.email_id,
        "webhook_id": job.webhook_id,
        "target": mask_url(job.target.url) if job.target.url else "",
        "target_class": job.target.target_class,
        "status": status,
        "status_code": result.status_code if result else status_code,
        "attempt": job.attempt,
        "delivery_mode": result.delivery_mode if result else None,
        "duration_ms": result.duration_ms if result else None,
        "failure_reason": (result.failure_reason if result else None) or reason,
        "next_attempt_at": iso(due) if due is not None else None,
        "response_snippet": result.snippet if result else None,
        "subject": job.event.subject[:100],
    }
    if result is not None and status == "success":
        entry["failure_reason"] = None
    return entry


def build_dead_letter(
    job: Job, result: AttemptResult | None, reason: str, body: bytes, now: float
) -> dict[str, Any]:
    """The dead-letter record; its ``job`` is reset so a replay starts afresh."""
    reset = Job(
        webhook_id=job.webhook_id,
        event=job.event,
        target=job.target,
        created_at=job.created_at,
    )
    return {
        "webhook_id": job.webhook_id,
        "email_id": job.event.email_id,
        "target": job.target.url,
        "target_class": job.target.target_class,
        "last_status": result.status_code if result else None,
        "last_response": result.snippet[:200] if result else "",
        "failure_reason": (result.failure_reason if result else None) or reason,
        "attempts": job.attempt,
        "subject": job.event.subject[:100],
        "failed_at": repr(now),
        "payload": body,
        "job": JobQueue.encode(reset),
    }
