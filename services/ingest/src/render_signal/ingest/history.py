"""What ingest writes on each email's timeline: received, then parsed or skipped (why)."""

from __future__ import annotations

import time

import msgspec
from redis.asyncio.client import Pipeline
from render_signal.common.events import MailRaw, MailReceived
from render_signal.common.records import TimelineEvent
from render_signal.common.timeline import TimelineWriter

__all__ = ["IngestHistory"]


class IngestHistory:
    """The first lines of every accepted email's timeline."""

    def __init__(self, timeline: TimelineWriter) -> None:
        self.timeline = timeline

    @staticmethod
    def _event(kind: str, **fields: object) -> TimelineEvent:
        return msgspec.convert(
            {"at": time.time(), "kind": kind, "service": "ingest", **fields}, TimelineEvent
        )

    def _received(self, event: MailRaw) -> TimelineEvent:
        return self._event("received", source=event.source, size=event.original_size)

    @staticmethod
    def _fields(event: MailRaw, subject: str, sender: str) -> dict[str, str | int | float]:
        return {
            "subject": subject[:200],
            "sender": sender[:200],
            "source": event.source,
            "size": event.original_size,
            "received_at": event.received_at,
        }

    async def skipped(
        self,
        event: MailRaw,
        email_id: str,
        reason: str,
        subject: str,
        sender: str,
        first_sight: bool,
    ) -> None:
        """A skip; a repeat of an email already seen only adds the event to its timeline."""
        skipped = self._event("skipped", reason=reason)
        if not first_sight:
            await self.timeline.record(email_id, skipped)
            return
        await self.timeline.record(
            email_id,
            self._received(event),
            skipped,
            fields={**self._fields(event, subject, sender), "stage": "skipped", "reason": reason},
            received_at=event.received_at,
        )

    async def published(self, event: MailRaw, received: MailReceived) -> None:
        async with self.timeline.redis.pipeline(transaction=False) as pipe:
            self.stage_published(pipe, event, received)
            await pipe.execute()
        await self.timeline.prune_if_due()

    def stage_published(self, pipe: Pipeline, event: MailRaw, received: MailReceived) -> None:
        """:meth:`published`'s writes, added to ``pipe`` (the caller then calls
        ``timeline.prune_if_due``)."""
        parsed = self._event(
            "parsed", detector=received.detector, reason=f"{len(received.links)} link(s)"
        )
        fields = self._fields(event, received.subject, received.sender_email)
        self.timeline.stage(
            pipe,
            received.email_id,
            self._received(event),
            parsed,
            fields={**fields, "stage": "parsed"},
            received_at=event.received_at,
        )
