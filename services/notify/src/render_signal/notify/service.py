"""Notify: turns ``mail.offloaded`` events into durable per-target delivery jobs.

Per stream entry: resolve targets, create one job per (email, target) in the
schedule (idempotent on the webhook-id), try each at once, then return so
the entry is acked. Everything that must wait -- window, absence, switch,
rate limit, retries -- is parked in the ZSET, never slept on while holding
the entry. :meth:`NotifyService.process` is shared with the scheduler loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.events import MailOffloaded
from render_signal.common.keys import consumer_name
from render_signal.common.logs import mask_url
from render_signal.common.records import DisabledTarget
from render_signal.common.streams import Delivery
from render_signal.common.timefmt import iso
from render_signal.common.timeline import TimelineWriter
from render_signal.notify.clock import Clock
from render_signal.notify.delivery import AttemptResult, WebhookSender
from render_signal.notify.jobs import CREATED, EXISTS, Job, JobQueue
from render_signal.notify.liveconfig import LiveConfig, load_live_config
from render_signal.notify.outcomes import Outcomes
from render_signal.notify.payload import build_payload, encode_payload
from render_signal.notify.ratelimit import RateLimiter
from render_signal.notify.settings import NotifySettings
from render_signal.notify.signing import webhook_id
from render_signal.notify.targets import Target, current_target, resolve_targets
from render_signal.notify.window import DESABO, decide

__all__ = ["NotifyService"]

logger = logging.getLogger(__name__)

RECHECK_S = 60.0  # sending off / no target: look again this often


class NotifyService:
    def __init__(
        self,
        settings: NotifySettings,
        redis: Redis,
        watcher: ConfigWatcher,
        clock: Clock,
        sender: WebhookSender,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.common.keys
        self.watcher = watcher
        self.clock = clock
        self.sender = sender
        self.queue = JobQueue(redis, self.keys, consumer_name("notify", settings.common.instance))
        self.limiter = RateLimiter(redis, self.keys)
        self.outcomes = Outcomes(
            redis, self.keys, self.queue, clock, TimelineWriter.configured(redis, settings.common)
        )
        self.lease_s = settings.timeout_s * 4 + 60.0

    # -- stream entry ------------------------------------------------------------
    async def handle_event(self, event: MailOffloaded, delivery: Delivery) -> None:
        config = await load_live_config(self.watcher, self.settings)
        targets = resolve_targets(event, config)
        now = self.clock.now()
        if not targets:
            logger.warning(
                "NOTIFY: no webhook target configured (set WEBHOOK_URL or webhook_config."
                "webhook_url); email %s waits in the schedule (no_target)",
                event.email_id,
            )
            targets = [Target(url="", target_class="custom")]
        claimed: list[tuple[Job, list[Any] | None]] = []
        for target in targets:
            job = Job(
                webhook_id=webhook_id(event.email_id, target.key()),
                event=event,
                target=target,
                created_at=now,
            )
            current = current_target(target, config)
            reads_of = functools.partial(self._stage_reads, job=job, target=current)
            # Light (jobs module docstring): this entry stays unacknowledged until
            # every job created here is finished or stored in full, below.
            record = self.queue.encode_light(job, delivery.entry_id)
            created, reads = await self.queue.create_and_read(
                job, now + self.lease_s, reads_of, record=record
            )
            if created == CREATED:
                claimed.append((job, reads))
            elif created == EXISTS:
                existing = await self._existing(job.webhook_id, event)
                # A redelivery: take the job over unless a worker's lease on it is
                # recorded (ours from a previous life was already made due at start).
                if (
                    existing is not None
                    and delivery.deliveries > 1
                    and await self.queue.take_over(job.webhook_id, now + self.lease_s)
                ):
                    claimed.append((existing, None))
        # The jobs are durable from here on: a failure below only delays them.
        results = await asyncio.gather(
            *(self.process(job, config, reads) for job, reads in claimed),
            return_exceptions=True,
        )
        for (job, _), result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("NOTIFY: processing failed; the schedule retries: %r", result)
                # Before this entry is acknowledged (a no-op unless the record is
                # still the light one naming it); if Redis refuses, the exception
                # keeps the entry pending and its redelivery completes the record.
                await self.queue.store_full(job, delivery.entry_id)

    async def _existing(self, job_id: str, event: MailOffloaded) -> Job | None:
        """The stored job for ``job_id``, in full: a light record (another
        handler's, which died or was overtaken) is completed with ``event``'s
        bodies, the same email's, and stored so."""
        existing = await self.queue.get(job_id)
        if existing is None or not existing.event_entry:
            return existing
        return await self.queue.complete(existing, event)

    # -- scheduled item -------------------------------------------------------------
    async def process_id(self, job_id: str) -> None:
        job = await self.queue.get(job_id)
        if job is None:
            await self.queue.done(job_id)
            await self.redis.srem(self.keys.notify_deferred, job_id)
            return
        full = await self.queue.hydrate(job)
        if full is None:
            # A light record whose entry is gone: only a dead-lettered entry does
            # that (its handler failed to store the job five times). Replaying
            # that dead letter completes the record (_existing); until then the
            # job waits, nothing is sent without its bodies.
            logger.error(
                "NOTIFY: job %s lacks its bodies (mail.offloaded entry %s is gone); replay"
                " that entry's dead letter to send it",
                job_id,
                job.event_entry,
            )
            await self.queue.put(job, self.clock.now() + RECHECK_S)  # stays light
            return
        await self.process(full, await load_live_config(self.watcher, self.settings))

    def _stage_reads(self, pipe: Pipeline, *, job: Job, target: Target) -> None:
        """The three reads every step starts with: finished, ``target`` (the job's,
        resolved from the configuration) disabled, override."""
        self.queue.stage_is_finished(pipe, job.webhook_id)
        pipe.hexists(self.keys.notify_disabled_targets, target.url)
        pipe.hget(self.keys.notify_overrides, job.webhook_id)

    async def process(self, job: Job, config: LiveConfig, reads: list[Any] | None = None) -> None:
        """Take one claimed job one step further: send, park, drop or dead-letter.

        The target is resolved from the configuration now (:func:`current_target`),
        and an operator's "retry now" (``notify:overrides``) bypasses the sending
        rules and the rate limit once, with a log line. ``reads``: the replies of
        :meth:`_stage_reads`, when the job's creation already made them.
        """
        target = current_target(job.target, config)
        if reads is None:
            async with self.redis.pipeline(transaction=False) as pipe:
                self._stage_reads(pipe, job=job, target=target)
                reads = await pipe.execute()
        finished, disabled, override = reads
        if finished:
            await self.outcomes.done(job)
            return
        now = self.clock.now()
        event = job.event
        job.target = target
        if not target.url:
            await self.outcomes.parked(job, now + RECHECK_S, "no_target", log_once=True)
            return
        if disabled:
            await self.outcomes.dead_letter(job, None, "target_disabled", b"")
            return
        if (
            target.target_class != "rule"
            and not event.links
            and not config.allow_without_links
            and event.detector != DESABO
        ):
            await self.outcomes.skipped(job, "skipped", "no_links", status_code=204)
            return
        gate = config.gate
        if target.policy is not None:
            gate = msgspec.structs.replace(gate, policy=target.policy)
        decision = decide(gate, now, event.detector, event.is_urgent)
        if override is not None and decision.action != "send":
            logger.warning(
                "NOTIFY: email %s to %s sent now by an operator (override of %s)",
                event.email_id,
                mask_url(target.url),
                decision.reason,
            )
            decision = msgspec.structs.replace(decision, action="send", reason="operator_override")
        if decision.action == "drop":
            await self.outcomes.skipped(job, "skipped", decision.reason)
            return
        if decision.action == "defer":
            due = decision.due if decision.due is not None else now + RECHECK_S
            await self.outcomes.parked(job, due, decision.reason, log_once=True)
            return
        body = encode_payload(build_payload(event, decision, target.priority))
        attempt = job.attempt + 1
        if override is None:
            free_at = await self.limiter.acquire(
                target.url, f"{job.webhook_id}:{attempt}", config.rate_limit_per_hour, now
            )
            if free_at is not None:
                await self.outcomes.parked(job, free_at, "rate_limited", outcome="rate_limited")
                return
        job.attempt = attempt
        job.first_attempt_at = job.first_attempt_at or now
        if override is not None:
            await self.redis.hdel(self.keys.notify_overrides, job.webhook_id)
        result = await self.sender.send(
            target,
            body,
            job.webhook_id,
            mode=config.delivery_mode,
            fallback_on_415=config.fallback_on_415,
            timeout_s=config.timeout_s,
            ssl_verify=config.ssl_verify,
        )
        await self._after_attempt(job, config, result, body)

    async def _after_attempt(
        self, job: Job, config: LiveConfig, result: AttemptResult, body: bytes
    ) -> None:
        now = self.clock.now()
        if result.outcome == "success":
            await self.outcomes.delivered(job, result, body)
            return
        if result.outcome == "retry":
            delay = self._backoff(job.attempt, result.retry_after, config.retry_base_s)
            started = job.first_attempt_at or now
            capped = config.max_attempts > 0 and job.attempt >= config.max_attempts
            if not capped and now + delay <= started + self.settings.retry_window_s:
                await self.outcomes.retrying(job, result, body, now + delay)
                return
            await self.outcomes.dead_letter(job, result, "retries_exhausted", body)
            return
        if result.outcome == "gone":
            await self.redis.hset(
                self.keys.notify_disabled_targets,
                job.target.url,
                msgspec.json.encode(
                    DisabledTarget(disabled_at=iso(now), email_id=job.event.email_id)
                ),
            )
            logger.error("NOTIFY: target %s answered 410: disabled", mask_url(job.target.url))
        await self.outcomes.dead_letter(job, result, result.failure_reason or "gone", body)

    def _backoff(self, attempt: int, retry_after: float | None, base_s: float) -> float:
        """Equal jitter: half to all of min(cap, base * 2^(n-1)), at least Retry-After."""
        ceiling = min(self.settings.retry_cap_s, base_s * 2 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # half-jitter floor keeps growth visible
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
