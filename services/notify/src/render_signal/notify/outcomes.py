"""What notify writes when a job moves: queue, webhook log, timeline, target health, metrics.

Every outcome of :class:`~render_signal.notify.service.NotifyService` goes
through one :class:`Outcomes` method, so the schedule, the webhook log (the
original's view), the per-email timeline (the operator's view) and each
target's health (the status verdict) always tell the same story.
"""

from __future__ import annotations

import logging

import msgspec
from redis.asyncio import Redis
from render_signal.common.deadletters import add_webhook_dead_letter
from render_signal.common.keys import Keys
from render_signal.common.logs import mask_url
from render_signal.common.records import (
    AttemptStatus,
    DeliveryAttempt,
    TargetHealth,
    TargetState,
    TimelineEvent,
)
from render_signal.common.timefmt import iso
from render_signal.common.timeline import TargetStatus, TimelineWriter
from render_signal.common.webhooklog import append_attempt, stage_attempt
from render_signal.notify import metrics
from render_signal.notify.clock import Clock
from render_signal.notify.delivery import AttemptResult
from render_signal.notify.jobs import Job, JobQueue
from render_signal.notify.records import build_dead_letter, build_log_entry
from render_signal.notify.targets import Target

__all__ = ["PAYLOAD_KEPT", "RULE_REASONS", "Outcomes"]

logger = logging.getLogger(__name__)

#: Characters of the payload kept per attempt in the timeline.
PAYLOAD_KEPT = 4096
#: Deferrals a configuration change can lift at once (re-checked when it changes).
RULE_REASONS = frozenset({"sending_disabled", "absence", "outside_window", "no_target"})
_health_decoder = msgspec.json.Decoder(TargetHealth)


def attempt_record(job: Job, result: AttemptResult, body: bytes) -> DeliveryAttempt:
    """One attempt as the timeline shows it (the URL masked, the body truncated)."""
    return DeliveryAttempt(
        webhook_id=job.webhook_id,
        target=job.target.name,
        url=mask_url(job.target.url),
        attempt=job.attempt,
        outcome=result.outcome,
        request_headers=result.request_headers,
        payload=body[:PAYLOAD_KEPT].decode("utf-8", "replace"),
        payload_bytes=len(body),
        status_code=result.status_code,
        response_headers=result.response_headers,
        response_snippet=result.snippet,
        error=result.failure_reason if result.outcome != "success" else None,
        duration_ms=result.duration_ms,
    )


class Outcomes:
    """Records outcomes of jobs for one notify replica."""

    def __init__(
        self, redis: Redis, keys: Keys, queue: JobQueue, clock: Clock, timeline: TimelineWriter
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.queue = queue
        self.clock = clock
        self.timeline = timeline

    async def _timeline(self, job: Job, state: TargetState, *events: TimelineEvent) -> None:
        target = TargetStatus(webhook_id=job.webhook_id, name=job.target.name, state=state)
        await self.timeline.record(job.event.email_id, *events, target=target)

    def _event(self, job: Job, kind: str, **fields: object) -> TimelineEvent:
        return msgspec.convert(
            {
                "at": self.clock.now(),
                "kind": kind,
                "service": "notify",
                "webhook_id": job.webhook_id,
                "target": job.target.name,
                **{k: v for k, v in fields.items() if v is not None},
            },
            TimelineEvent,
        )

    async def log(
        self,
        job: Job,
        status: AttemptStatus,
        *,
        result: AttemptResult | None = None,
        reason: str | None = None,
        due: float | None = None,
        status_code: int | None = None,
    ) -> None:
        entry = build_log_entry(
            job,
            status,
            self.clock.now(),
            result=result,
            reason=reason,
            due=due,
            status_code=status_code,
        )
        await append_attempt(self.redis, self.keys, entry)

    async def health(self, target: Target, result: AttemptResult) -> None:
        """Update the target's delivery health after an attempt (read by the verdict).

        Keyed by the target's role (``default``, ``rule:<id>``): when its URL
        changes, the record starts over, since the old endpoint's failures say
        nothing about the new one.
        """
        raw = await self.redis.hget(self.keys.notify_targets, target.key())
        await self.redis.hset(
            self.keys.notify_targets, target.key(), self._health(target, result, raw)
        )

    def _health(self, target: Target, result: AttemptResult, raw: bytes | str | None) -> bytes:
        """The target's health record after ``result``, from its stored form ``raw``."""
        now = self.clock.now()
        url = mask_url(target.url)
        health = _health_decoder.decode(raw) if raw else None
        if health is None or health.url != url:
            health = TargetHealth(name=target.name, url=url, target_class=target.target_class)
        health.name = target.name
        if result.outcome == "success":
            health.consecutive_failures, health.failing_since = 0, None
            health.last_success_at = now
        else:
            health.consecutive_failures += 1
            health.failing_since = health.failing_since or now
            health.last_failure_at, health.last_status = now, result.status_code
            health.last_error = result.failure_reason
        return msgspec.json.encode(health)

    # -- outcomes ------------------------------------------------------------------------
    async def delivered(self, job: Job, result: AttemptResult, body: bytes) -> None:
        """Record a 2xx: two round trips (issue 16) -- the sent marker with the target's
        health record, then one MULTI with the log entry, the timeline step, the new
        health and the job's removal. Only the first 2xx for a webhook-id is logged."""
        cls = job.target.target_class
        metrics.ATTEMPTS.labels(cls, "success").inc()
        async with self.redis.pipeline(transaction=False) as pipe:
            self.queue.stage_mark_sent(pipe, job.webhook_id)
            pipe.hget(self.keys.notify_targets, job.target.key())
            first, health_raw = await pipe.execute()
        async with self.redis.pipeline(transaction=True) as pipe:
            if first:
                entry = build_log_entry(job, "success", self.clock.now(), result=result)
                stage_attempt(pipe, self.keys, entry)
                event = self._event(job, "attempt", attempt=attempt_record(job, result, body))
                status = TargetStatus(
                    webhook_id=job.webhook_id, name=job.target.name, state="delivered"
                )
                self.timeline.stage(pipe, job.event.email_id, event, target=status)
            pipe.hset(
                self.keys.notify_targets,
                job.target.key(),
                self._health(job.target, result, health_raw),
            )
            self.queue.stage_done(pipe, job.webhook_id)
            pipe.srem(self.keys.notify_deferred, job.webhook_id)
            pipe.hdel(self.keys.notify_overrides, job.webhook_id)
            await pipe.execute()
        if first:
            metrics.DELIVERIES.labels(cls, "success").inc()
            if job.event.received_at:
                metrics.LATENCY.labels(cls).observe(
                    max(0.0, self.clock.now() - job.event.received_at)
                )
            logger.info(
                "NOTIFY: email %s delivered to %s (%s, HTTP %s, attempt %d, %d ms)",
                job.event.email_id,
                job.target.name,
                mask_url(job.target.url),
                result.status_code,
                job.attempt,
                result.duration_ms,
            )
            await self.timeline.prune_if_due()

    async def retrying(self, job: Job, result: AttemptResult, body: bytes, due: float) -> None:
        cls = job.target.target_class
        metrics.ATTEMPTS.labels(cls, "retry").inc()
        metrics.DELIVERIES.labels(cls, "retry").inc()
        await self.queue.put(job, due)
        await self.log(job, "retrying", result=result, due=due)
        logger.warning(
            "NOTIFY: email %s to %s (%s) failed on attempt %d: %s (HTTP %s); retry at %s",
            job.event.email_id,
            job.target.name,
            mask_url(job.target.url),
            job.attempt,
            result.failure_reason,
            result.status_code,
            iso(due),
        )
        attempt = attempt_record(job, result, body)
        await self._timeline(
            job, "retrying", self._event(job, "attempt", attempt=attempt, until=due)
        )
        await self.health(job.target, result)

    async def dead_letter(
        self, job: Job, result: AttemptResult | None, reason: str, body: bytes
    ) -> None:
        cls = job.target.target_class
        if result is not None:
            metrics.ATTEMPTS.labels(cls, "dead_letter").inc()
        metrics.DELIVERIES.labels(cls, "dead_letter").inc()
        await add_webhook_dead_letter(
            self.redis, self.keys, build_dead_letter(job, result, reason, body, self.clock.now())
        )
        await self.queue.mark_final(job.webhook_id, "dead_letter")
        await self.log(job, "dead_letter", result=result, reason=reason)
        events = (
            []
            if result is None
            else [self._event(job, "attempt", attempt=attempt_record(job, result, body))]
        )
        events.append(self._event(job, "dead_letter", reason=reason))
        await self._timeline(job, "dead_letter", *events)
        if result is not None:
            await self.health(job.target, result)
        await self.done(job)
        logger.error(
            "NOTIFY: email %s to %s dead-lettered after %d attempt(s): %s",
            job.event.email_id,
            mask_url(job.target.url),
            job.attempt,
            reason,
        )

    async def parked(
        self,
        job: Job,
        due: float,
        reason: str,
        *,
        outcome: str = "deferred",
        log_once: bool = False,
    ) -> None:
        """Wait until ``due`` (window, absence, switch, rate limit, no target)."""
        first = not job.deferred
        job.deferred = True
        await self.queue.put(job, due)
        if reason in RULE_REASONS:
            await self.redis.sadd(self.keys.notify_deferred, job.webhook_id)
        metrics.DELIVERIES.labels(job.target.target_class, outcome).inc()
        if first or not log_once:
            logger.info(
                "NOTIFY: email %s to %s deferred (%s) until %s",
                job.event.email_id,
                mask_url(job.target.url) if job.target.url else "(none)",
                reason,
                iso(due),
            )
            await self.log(job, "deferred", reason=reason, due=due)
            await self._timeline(
                job, "deferred", self._event(job, "deferred", reason=reason, until=due)
            )

    async def skipped(
        self, job: Job, status: AttemptStatus, reason: str, status_code: int | None = None
    ) -> None:
        """Finished without a send: no links, or dropped by the window policy."""
        metrics.DELIVERIES.labels(job.target.target_class, "skipped").inc()
        await self.queue.mark_final(job.webhook_id, status)
        await self.log(job, status, reason=reason, status_code=status_code)
        kind = "dropped" if reason in RULE_REASONS else "skipped"
        await self._timeline(job, "skipped", self._event(job, kind, reason=reason))
        await self.done(job)
        logger.info("NOTIFY: email %s %s (%s)", job.event.email_id, status, reason)

    async def done(self, job: Job) -> None:
        await self.queue.done(
            job.webhook_id,
            also=lambda pipe: (
                pipe.srem(self.keys.notify_deferred, job.webhook_id),
                pipe.hdel(self.keys.notify_overrides, job.webhook_id),
            ),
        )
