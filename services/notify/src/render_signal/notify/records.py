"""What notify writes about an outcome: the webhook-log entry and the dead-letter record.

Both are typed records of ``render_signal.common.records``; the log is written
through ``common.webhooklog`` and dead letters through ``common.deadletters``.
"""

from __future__ import annotations

import msgspec
from render_signal.common.logs import mask_url
from render_signal.common.records import AttemptStatus, DeadLetter, WebhookAttempt
from render_signal.common.timefmt import iso
from render_signal.notify.delivery import AttemptResult
from render_signal.notify.jobs import Job, JobQueue

__all__ = ["build_dead_letter", "build_log_entry"]


def build_log_entry(
    job: Job,
    status: AttemptStatus,
    now: float,
    *,
    result: AttemptResult | None = None,
    reason: str | None = None,
    due: float | None = None,
    status_code: int | None = None,
) -> WebhookAttempt:
    """The entry for ``job`` reaching ``status`` at ``now`` (after ``result``, if any)."""
    failure = (result.failure_reason if result else None) or reason
    return WebhookAttempt(
        timestamp=iso(now),
        email_id=job.event.email_id,
        webhook_id=job.webhook_id,
        target=mask_url(job.target.url) if job.target.url else "",
        target_class=job.target.target_class,
        status=status,
        status_code=result.status_code if result else status_code,
        attempt=job.attempt,
        delivery_mode=result.delivery_mode if result else None,
        duration_ms=result.duration_ms if result else None,
        failure_reason=None if (result is not None and status == "success") else failure,
        next_attempt_at=iso(due) if due is not None else None,
        response_snippet=result.snippet if result else None,
        subject=job.event.subject[:100],
    )


def build_dead_letter(
    job: Job, result: AttemptResult | None, reason: str, body: bytes, now: float
) -> DeadLetter:
    """The dead-letter record; its ``job`` is reset so a replay starts afresh."""
    reset = Job(
        webhook_id=job.webhook_id,
        event=job.event,
        target=job.target,
        created_at=job.created_at,
    )
    return DeadLetter(
        webhook_id=job.webhook_id,
        email_id=job.event.email_id,
        target=job.target.url,
        target_class=job.target.target_class,
        status_code=result.status_code if result else None,
        response_snippet=result.snippet[:200] if result else "",
        failure_reason=(result.failure_reason if result else None) or reason,
        attempts=job.attempt,
        subject=job.event.subject[:100],
        failed_at=now,
        payload=body.decode("utf-8", "replace"),
        job=msgspec.Raw(JobQueue.encode(reset)),
    )
