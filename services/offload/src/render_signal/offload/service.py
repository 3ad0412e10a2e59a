"""The offload handler: mail.received -> (R2 Worker per link) -> mail.offloaded.

Per link: normalise; refuse non-allowlisted/non-https URLs (never sent to the
Worker); reuse a journalled ``r2_url``; else call the Worker. Whatever happens
(Worker down, breaker open, exceptions in this code) the link keeps its source
URL (``direct_url`` = normalised source) and the email is published: a valid
email is never dead-lettered because of the Worker. Only a Redis failure while
publishing makes the handler raise (the entry stays pending and is retried).

Idempotency: the publish is one MULTI that XADDs mail.offloaded and sets
``<prefix>offload:done:<event_id>`` (7 days), with the journal rows and the
timeline step, so the marker exists exactly when the entry does. The marker
is read before any Worker call: a redelivered entry (restart after SIGKILL,
XAUTOCLAIM) finds it, does no work and is acked, so a crash anywhere still
gives one mail.offloaded entry per event id. Two replicas handling the *same*
entry at the *same* moment (a takeover racing a holder still alive; liveness
keys exist to prevent it) may both publish: notify absorbs the repeat, its
jobs being created once per email and target. This was a Lua script checking
the marker at publish time; a script's arguments cost Redis twice what the
same bytes cost in a MULTI (issue 16: 192 against 85 us for a 70 KB entry),
and the publish is the one write that carries the email's bodies.

Links file: rows for ``WEBHOOK_LINKS_FILE`` are staged in Redis together with
the link journal write (before the publish) and written to the file by a
:class:`~render_signal.offload.linkswriter.LinksFileWriter` in coalesced
flushes; see that module for why nothing is lost. Call :meth:`start` before
consuming and :meth:`aclose` after the consumer has drained.

Round trips per email (issue 16): one pipeline reads the published marker and
every link's journal record, one MULTI writes the new journal rows, their
links-file staging, the timeline step, the entry and its marker.
(Just over 300 lines: the handler and its per-link path read best together.)
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.events import DeliveryLink, MailOffloaded, MailReceived
from render_signal.common.keys import Keys
from render_signal.common.linkjournal import LinkJournal, LinkRecord
from render_signal.common.logs import log_context, mask_url
from render_signal.common.records import HeartbeatDetails, LinkOutcome, TimelineEvent
from render_signal.common.streams import PUBLISHED, Delivery, stage_publish
from render_signal.common.timefmt import iso
from render_signal.common.timeline import TimelineWriter
from render_signal.offload.allowlist import refusal_reason
from render_signal.offload.linkswriter import LinksFileWriter
from render_signal.offload.metrics import ATTEMPTS, FALLBACKS, provider_label
from render_signal.offload.normalise import normalise
from render_signal.offload.objectkey import object_key
from render_signal.offload.worker_client import WorkerClient

__all__ = ["DONE_TTL_S", "OffloadService"]

logger = logging.getLogger(__name__)

#: How long the per-event "published" marker lives.
DONE_TTL_S = 7 * 24 * 3600


class OffloadService:
    """Offloads the links of one email at a time (links of an email run concurrently).

    Args:
        redis: stream and journal client.
        keys: this deployment's Redis keys.
        client: the Worker client, or None when offload is disabled.
        journal: Redis link journal (reuse of earlier r2_urls).
        links_writer: coalescing writer of the original's JSON journal file, or None.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: Keys,
        client: WorkerClient | None,
        journal: LinkJournal,
        links_writer: LinksFileWriter | None,
        timeline: TimelineWriter,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.out_stream = keys.mail_offloaded
        self.client = client
        self.journal = journal
        self.links_writer = links_writer
        self.timeline = timeline
        self.published = 0
        self.duplicates_skipped = 0

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def start(self) -> None:
        """Recover staged links-file rows of an earlier run, then start the writer."""
        if self.links_writer is not None:
            await self.links_writer.recover()
            self.links_writer.start()

    async def close_links(self) -> None:
        """Flush pending links-file rows and stop the writer (idempotent)."""
        if self.links_writer is not None:
            await self.links_writer.aclose()

    async def aclose(self) -> None:
        """Flush the links file, then close the Worker client."""
        try:
            await self.close_links()
        finally:
            if self.client is not None:
                await self.client.aclose()

    def details(self) -> HeartbeatDetails:
        """Heartbeat details (dashboard status)."""
        return HeartbeatDetails(
            offload="enabled" if self.client is not None else "disabled",
            published=self.published,
            breaker=None if self.client is None else self.client.breaker.state,
        )

    async def handle(self, event: MailReceived, delivery: Delivery) -> None:
        """Consumer handler: offload, then publish once per event id."""
        token = log_context.set({"event_id": event.event_id, "email_id": event.email_id})
        try:
            done_key = self.keys.offload_done(event.event_id)
            sources = [self._source(link) for link in event.links]
            wanted = [s for s in sources if self.client is not None and refusal_reason(s) is None]
            # One round trip: the published marker and every link's journal record.
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(done_key)
                if wanted:
                    pipe.hmget(self.journal.key, wanted)
                replies = await pipe.execute()
            if replies[0]:
                self.duplicates_skipped += 1
                logger.info(
                    "OFFLOAD: event already published (delivery %d); acking", delivery.deliveries
                )
                return
            journalled = dict(zip(wanted, replies[1], strict=True)) if wanted else {}
            reusable = {s: self.journal.fresh(raw) for s, raw in journalled.items()}
            started = time.perf_counter()
            links, outcomes, rows = await self._offload_all(event, sources, reusable)
            out = MailOffloaded.from_received(
                event,
                links=links,
                offload_enabled=self.enabled,
                trace={**event.trace, "offloaded_at": time.time()},
            )
            # On the timeline before the publish, so notify's steps always come after it;
            # in the same MULTI as the journal rows (and their links-file staging).
            step = TimelineEvent(
                at=time.time(), kind="offloaded", service="offload", links=outcomes
            )
            writer = self.links_writer

            def also(pipe: Pipeline) -> None:
                for row in rows:
                    if writer is not None:
                        writer.stage(pipe, row)
                self.timeline.stage(pipe, event.email_id, step, fields={"stage": "offloaded"})
                stage_publish(pipe, self.out_stream, out)
                pipe.set(done_key, event.event_id, ex=DONE_TTL_S)

            replies = await self.journal.put(rows, also=also)
            entry_id = replies[-2]
            self.published += 1
            PUBLISHED.labels(Keys.stream_name(self.out_stream)).inc()
            await self.timeline.prune_if_due()
            if writer is not None:
                writer.submit(rows)
            offloaded = sum(1 for link in links if link.r2_url)
            logger.info(
                "OFFLOAD: %d/%d links in R2 in %.2fs; published %s",
                offloaded,
                len(links),
                time.perf_counter() - started,
                entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            )
        finally:
            log_context.reset(token)

    async def _offload_all(
        self,
        event: MailReceived,
        sources: list[str],
        reusable: dict[str, LinkRecord | None],
    ) -> tuple[tuple[DeliveryLink, ...], list[LinkOutcome], list[LinkRecord]]:
        """The Worker calls of every link at once: links, outcomes and new journal rows."""
        if not event.links:
            return (), [], []
        results = await asyncio.gather(
            *(
                self._offload_one(link, event.email_id, source, reusable.get(source))
                for link, source in zip(event.links, sources, strict=True)
            )
        )
        outcomes = [
            LinkOutcome(
                provider=link.provider,
                source_url=link.direct_url or link.raw_url,
                r2=link.r2_url is not None,
                reason=reason,
            )
            for link, _, reason in results
        ]
        rows = [row for _, row, _ in results if row is not None]
        return tuple(link for link, _, _ in results), outcomes, rows

    @staticmethod
    def _source(link: DeliveryLink) -> str:
        """The normalised source URL (an opaque gateway link is kept as is)."""
        try:
            if "mimecast_opaque" in link.flags:
                return link.raw_url
            return normalise(link.provider or "unknown", link.raw_url)
        except Exception:  # a malformed URL must not cost the email
            logger.exception(
                "OFFLOAD: could not normalise a %s link", provider_label(link.provider)
            )
            return link.raw_url

    async def _offload_one(
        self, link: DeliveryLink, email_id: str, source: str, reused: LinkRecord | None
    ) -> tuple[DeliveryLink, LinkRecord | None, str | None]:
        """The link (with ``r2_url`` when copied), its new journal row, and why not copied.

        ``reused``: the journal's record for ``source``, read by the caller.
        """
        provider = link.provider or "unknown"
        label = provider_label(provider)
        kept = DeliveryLink(
            provider=provider, raw_url=link.raw_url, direct_url=source, flags=link.flags
        )
        if self.client is None:
            ATTEMPTS.labels(label, "skipped").inc()
            return kept, None, "offload_disabled"
        try:
            refused = refusal_reason(source)
            if refused is not None:
                logger.warning(
                    "SECURITY: Blocked attempt to fetch from unauthorized domain (%s): %s",
                    refused,
                    mask_url(source),
                )
                ATTEMPTS.labels(label, "skipped").inc()
                return kept, None, f"refused: {refused}"
            if reused is not None:
                ATTEMPTS.labels(label, "reused").inc()
                return self._with_r2(kept, reused.r2_url, reused.original_filename), None, "reused"
            result = await self.client.offload(
                source_url=source,
                object_key=object_key(provider, source),
                provider=provider,
                email_id=email_id,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("R2_TRANSFER: unexpected error; falling back to source url")
            ATTEMPTS.labels(label, "error").inc()
            FALLBACKS.labels("exception").inc()
            return kept, None, "error"
        if result.r2_url is None:
            logger.warning(
                "R2_TRANSFER: failed (%s); falling back to source url %s",
                result.reason,
                mask_url(source),
            )
            ATTEMPTS.labels(label, "fallback").inc()
            FALLBACKS.labels(result.reason or "exception").inc()
            return kept, None, result.reason or "error"
        ATTEMPTS.labels(label, "success").inc()
        row = LinkRecord(
            source_url=source,
            r2_url=result.r2_url,
            provider=provider,
            created_at=iso(),
            original_filename=result.original_filename or None,
        )
        return self._with_r2(kept, result.r2_url, result.original_filename), row, None

    @staticmethod
    def _with_r2(link: DeliveryLink, r2_url: str, filename: str | None) -> DeliveryLink:
        return DeliveryLink(
            provider=link.provider,
            raw_url=link.raw_url,
            direct_url=link.direct_url,
            r2_url=r2_url,
            original_filename=filename,
            flags=link.flags,
        )
