"""The parser component: ``mail.raw`` -> ``mail.received``.

Per entry: runtime flags, parse + links + detectors (on the event loop up to
:data:`INLINE_PARSE_BYTES`, ~3 ms, where a thread hand-off cost 8-10 % of the CPU; bigger
emails in a thread, so heartbeats and IMAP IDLE go on), email-id dedup check, sender
allowlist, reply/forward prefixes, then an atomic dedup claim across paths
(:mod:`render_signal.ingest.dedup`), then publish (a crash between claim and publish
republishes on redelivery, never loses). An email that cannot be read at all is
dead-lettered at once with the reason (:class:`PermanentError`); everything else is
published with what could be read. Every outcome is counted and logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.consumer import Consumer
from render_signal.common.errors import PermanentError
from render_signal.common.events import MailRaw, MailReceived
from render_signal.common.identity import (
    fingerprint,
    gmail_email_id,
    message_id_email_id,
    normalise_message_id,
    raw_message_id,
)
from render_signal.common.keys import GROUP_INGEST, consumer_name
from render_signal.common.liveness import Liveness
from render_signal.common.logs import log_context, mask_email
from render_signal.common.streams import Delivery, publish
from render_signal.common.timeline import TimelineWriter
from render_signal.ingest.analysis import Analysis, analyse, read_event
from render_signal.ingest.dedup import SeenEmails
from render_signal.ingest.filters import SKIP_DUPLICATE, SKIP_GMAIL_DISABLED, load_policy
from render_signal.ingest.history import IngestHistory
from render_signal.ingest.identity import email_date, original_id
from render_signal.ingest.identity import email_id as compute_email_id
from render_signal.ingest.message import ParseLimits, UnreadableEmail
from render_signal.ingest.parsemetrics import ARRIVAL_TO_PUBLISH, EMAILS, PARSE_SECONDS
from render_signal.ingest.settings import IngestSettings

__all__ = ["INLINE_PARSE_BYTES", "ParserService", "run_parser"]

logger = logging.getLogger(__name__)

#: Emails up to this size are parsed on the loop (see the module docstring).
INLINE_PARSE_BYTES = 256 * 1024


class ParserService:
    """Handles one ``mail.raw`` entry at a time (see module docstring)."""

    def __init__(
        self,
        settings: IngestSettings,
        redis: Redis,
        watcher: ConfigWatcher,
        *,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.watcher = watcher
        self.now = now
        self.limits = ParseLimits(
            max_html_bytes=settings.max_html_bytes,
            max_text_bytes=settings.max_text_bytes,
            max_parse_bytes=settings.max_parse_bytes,
        )
        self.seen = SeenEmails(
            redis, settings.common.keys, settings.dedup_ttl_s, settings.dedup_tolerance_s
        )
        self.history = IngestHistory(TimelineWriter.configured(redis, settings.common))
        self.out_key = settings.common.keys.mail_received

    def _analyse(self, event: MailRaw, detectors: frozenset[str]) -> Analysis:
        parsed = read_event(event, self.limits)
        return analyse(
            parsed, detectors=detectors, now=self.now, timezone=self.settings.common.timezone
        )

    async def handle(self, event: MailRaw, delivery: Delivery) -> None:
        token = log_context.set({"event_id": event.event_id})
        try:
            await self._handle(event, delivery)
        finally:
            log_context.reset(token)

    async def _skip(
        self,
        reason: str,
        event: MailRaw,
        email_id: str,
        *,
        subject: str = "",
        sender: str = "",
        first_sight: bool = True,
        detail: str = "",
        timeline_id: str = "",
    ) -> None:
        """Count, log and record a skip.

        A duplicate goes on the timeline of the copy it duplicates
        (``timeline_id``, else ``email_id``), as one more event.
        """
        EMAILS.labels("skipped", reason).inc()
        logger.info(
            "INGEST: skipped %s email %s from %s: %s%s",
            event.source,
            email_id,
            mask_email(sender),
            reason,
            detail,
        )
        await self.history.skipped(
            event, timeline_id or email_id, reason, subject, sender, first_sight
        )

    async def _handle(self, event: MailRaw, delivery: Delivery) -> None:
        policy = await load_policy(self.watcher, self.settings)
        if event.source == "gmail_push" and not policy.gmail_ingress_enabled:
            gmail = event.gmail or {}
            await self._skip(
                SKIP_GMAIL_DISABLED,
                event,
                gmail_email_id(gmail),
                subject=gmail.get("subject", ""),
                sender=gmail.get("sender", ""),
            )
            return
        started = time.perf_counter()
        try:
            if len(event.raw) + sum(map(len, (event.gmail or {}).values())) <= INLINE_PARSE_BYTES:
                result = self._analyse(event, policy.detectors)
            else:
                result = await asyncio.to_thread(self._analyse, event, policy.detectors)
        except UnreadableEmail as exc:
            await self._unreadable(event, f"unreadable email: {exc}")
            raise PermanentError(f"unreadable email: {exc}") from exc
        except (ValueError, LookupError, TypeError, RecursionError, AttributeError) as exc:
            # Deterministic parse failures: retrying cannot help.
            await self._unreadable(event, f"parse failed: {type(exc).__name__}")
            raise PermanentError(f"parse failed: {type(exc).__name__}: {exc}") from exc
        finally:
            PARSE_SECONDS.observe(time.perf_counter() - started)
        parsed = result.parsed
        email_id = compute_email_id(parsed, event.source, event.gmail)
        log_context.set({"event_id": event.event_id, "email_id": email_id})
        subject, sender = parsed.subject, parsed.sender_email
        detection = result.detection
        filtered = policy.skip_reason(
            event.source,
            parsed.sender_email,
            parsed.subject,
            detection.detector,
            parsed.body_text,
            parsed.body_html,
        )
        if filtered is not None:
            # A copy already claimed is a duplicate first (the claim below says the
            # same for the others, in its own round trip).
            if policy.dedup_enabled and await self.seen.seen(email_id, event.event_id):
                await self._skip(SKIP_DUPLICATE, event, email_id, sender=sender, first_sight=False)
            else:
                await self._skip(filtered, event, email_id, subject=subject, sender=sender)
            return
        received_date = parsed.received_date or (
            dt.datetime.fromtimestamp(event.received_at, dt.UTC).isoformat().replace("+00:00", "Z")
        )
        if policy.dedup_enabled:
            claim = await self.seen.claim(
                email_id=email_id,
                event_id=event.event_id,
                fingerprint=fingerprint(parsed.sender_email, parsed.subject),
                dated=email_date(parsed, event.received_at),
                has_message_id=bool(normalise_message_id(parsed.message_id)),
            )
            if claim.duplicate:
                # A fingerprint match names the copy it duplicates (another path's id).
                detail = f" (same email as {claim.other})" if claim.verdict == "match" else ""
                await self._skip(
                    SKIP_DUPLICATE,
                    event,
                    email_id,
                    sender=sender,
                    first_sight=False,
                    detail=detail,
                    timeline_id=claim.other if claim.verdict == "match" else "",
                )
                return
        received = MailReceived(
            event_id=event.event_id,
            email_id=email_id,
            source=event.source,
            subject=parsed.subject,
            sender_address=parsed.sender_address,
            sender_email=parsed.sender_email,
            received_date=received_date,
            body_text=parsed.body_text,
            body_html=parsed.body_html,
            links=result.links,
            detector=detection.detector,
            delivery_time=detection.delivery_time,
            is_urgent=detection.is_urgent,
            truncated=event.truncated or parsed.truncated,
            received_at=event.received_at,
            trace={**event.trace, "parsed": time.time()},
            date_header=parsed.date,
            from_header=parsed.from_header,
            legacy_email_id=original_id(parsed, event.source, event.gmail),
        )
        # On the timeline first (same round trip), so offload's and notify's steps
        # always come after it.
        await publish(
            self.redis,
            self.out_key,
            received,
            before=lambda pipe: self.history.stage_published(pipe, event, received),
        )
        await self.history.timeline.prune_if_due()
        if not policy.dedup_enabled:
            await self.seen.mark(email_id, event.event_id)
        EMAILS.labels("published", "ok").inc()
        if event.imap_arrived_at is not None:
            ARRIVAL_TO_PUBLISH.observe(max(0.0, time.time() - event.imap_arrived_at))
        logger.info(
            "INGEST: published %s email %s from %s (%d link(s), detector=%s%s, delivery %d)",
            event.source,
            email_id,
            mask_email(parsed.sender_email),
            len(result.links),
            detection.detector or "none",
            ", truncated" if received.truncated else "",
            delivery.deliveries,
        )

    async def _unreadable(self, event: MailRaw, reason: str) -> None:
        """Dead-lettered at once, but still on the timeline, under the best id we have."""
        EMAILS.labels("dead_lettered", "unreadable").inc()
        message_id = raw_message_id(event.raw) if event.raw else ""
        email_id = message_id_email_id(message_id) if message_id else f"event-{event.event_id}"
        await self._skip(reason, event, email_id, subject="(unreadable)")


async def run_parser(
    settings: IngestSettings,
    redis: Redis,
    stop: asyncio.Event,
    *,
    watcher: ConfigWatcher | None = None,
    now: Callable[[], dt.datetime] | None = None,
    claim_idle_ms: int = 30_000,
    liveness: Liveness | None = None,
) -> None:
    """Consume ``mail.raw`` (group ``ingest``) until ``stop`` is set.

    ``watcher``: a shared config watcher whose ``listen`` the caller runs; by
    default the parser makes its own and runs its change listener.
    ``liveness``: the process's, for takeover of dead replicas' entries.
    """
    own_watcher = watcher is None
    if watcher is None:
        watcher = ConfigWatcher(ConfigStore(redis, settings.common.keys))
    service = ParserService(settings, redis, watcher, now=now)
    consumer: Consumer[MailRaw] = Consumer(
        redis,
        stream_key=settings.common.keys.mail_raw,
        group=GROUP_INGEST,
        consumer=consumer_name(GROUP_INGEST, settings.common.instance),
        event_type=MailRaw,
        handler=service.handle,
        batch_size=16,
        claim_idle_ms=claim_idle_ms,
        liveness=liveness,
    )
    listener = asyncio.create_task(watcher.listen(stop)) if own_watcher else None
    try:
        await consumer.run(stop)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
