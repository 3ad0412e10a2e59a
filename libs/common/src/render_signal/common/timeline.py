"""The per-email timeline: what happened to each accepted email, step by step.

Written by ingest (received, parsed or skipped), offload (each link copied or
kept) and notify (every delivery attempt, deferral, retry, final state), all
through :class:`TimelineWriter`; read by the gateway (:func:`list_emails`,
:func:`get_email`).

Storage, per email id (``Keys.email*``): a hash of summary fields (subject,
sender, source, size, stage, and ``t:<webhook-id>`` = ``<state>|<target name>``
per delivery target), a list of :class:`~render_signal.common.records.TimelineEvent`
JSON, and the ZSET index ``<p>emails`` by reception time. Every write refreshes
the keys' expiry (``TIMELINE_RETENTION_DAYS``); at most ``TIMELINE_MAX_EMAILS``
emails are kept, the oldest pruned first (at most once every
:data:`PRUNE_INTERVAL_S` per writer). The email's state is derived on read from
its stage and its targets' states (:func:`email_state`), so concurrent writers
in different services never race on one field.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from render_signal.common.keys import Keys
from render_signal.common.records import DeliveryAttempt, EmailState, TargetState, TimelineEvent
from render_signal.common.settings import CommonSettings

__all__ = [
    "EmailDetail",
    "EmailSummary",
    "TargetStatus",
    "TimedAttempt",
    "TimelineWriter",
    "email_state",
    "get_email",
    "list_emails",
]

PRUNE_INTERVAL_S = 30.0
_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(TimelineEvent)


class TargetStatus(msgspec.Struct, kw_only=True):
    webhook_id: str
    name: str
    state: TargetState


class EmailSummary(msgspec.Struct, kw_only=True):
    """One line of the history."""

    email_id: str
    state: EmailState
    subject: str = ""
    sender: str = ""
    source: str = ""
    received_at: float | None = None
    updated_at: float | None = None
    size: int | None = None
    reason: str | None = None
    targets: list[TargetStatus] = []


class TimedAttempt(DeliveryAttempt, kw_only=True):
    """A delivery attempt with when it was made."""

    at: float


class EmailDetail(EmailSummary, kw_only=True):
    """An email with every step; ``attempts`` repeats the delivery attempts alone."""

    events: list[TimelineEvent] = []
    attempts: list[TimedAttempt] = []


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def email_state(stage: str, targets: Iterable[TargetState]) -> EmailState:
    """The email's state from its stage and its targets (worst first: what needs a person)."""
    states = set(targets)
    if stage == "skipped" and not states:
        return "skipped"
    worst: tuple[EmailState, ...] = ("dead_letter", "retrying", "deferred")
    for state in worst:
        if state in states:
            return state
    if states and states <= {"delivered", "skipped"}:
        return "delivered" if "delivered" in states else "skipped"
    stages: dict[str, EmailState] = {"parsed": "parsed", "offloaded": "offloaded"}
    return stages.get(stage, "received")


def _summary(email_id: str, fields: Mapping[bytes, bytes]) -> EmailSummary | None:
    if not fields:
        return None
    text = {_text(k): _text(v) for k, v in fields.items()}
    targets: list[TargetStatus] = []
    for key, value in text.items():
        if key.startswith("t:"):
            state, _, name = value.partition("|")
            targets.append(TargetStatus(webhook_id=key[2:], name=name, state=state))  # type: ignore[arg-type]

    def number(name: str) -> float | None:
        try:
            return float(text[name])
        except (KeyError, ValueError):
            return None

    size = number("size")
    return EmailSummary(
        email_id=email_id,
        state=email_state(text.get("stage", "received"), (t.state for t in targets)),
        subject=text.get("subject", ""),
        sender=text.get("sender", ""),
        source=text.get("source", ""),
        received_at=number("received_at"),
        updated_at=number("updated_at"),
        size=None if size is None else int(size),
        reason=text.get("reason") or None,
        targets=sorted(targets, key=lambda t: t.name),
    )


class TimelineWriter:
    """Appends events for one service; see the module docstring for the layout."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        service: str,
        retention_days: float = 30.0,
        max_emails: int = 10_000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.service = service
        self.ttl_s = int(retention_days * 86400)
        self.max_emails = max_emails
        self._next_prune = 0.0

    @classmethod
    def configured(cls, redis: Redis, settings: CommonSettings) -> TimelineWriter:
        """A writer for ``settings.service`` with the deployment's retention."""
        return cls(
            redis,
            settings.keys,
            service=settings.service,
            retention_days=settings.timeline_days,
            max_emails=settings.timeline_max_emails,
        )

    async def record(
        self,
        email_id: str,
        *events: TimelineEvent,
        fields: Mapping[str, str | int | float] | None = None,
        target: TargetStatus | None = None,
        received_at: float | None = None,
    ) -> None:
        """Append ``events`` and update the summary ``fields`` (and one target's state)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            self.stage(
                pipe, email_id, *events, fields=fields, target=target, received_at=received_at
            )
            await pipe.execute()
        await self.prune_if_due()

    def stage(
        self,
        pipe: Pipeline,
        email_id: str,
        *events: TimelineEvent,
        fields: Mapping[str, str | int | float] | None = None,
        target: TargetStatus | None = None,
        received_at: float | None = None,
    ) -> None:
        """Add :meth:`record`'s writes to ``pipe`` (a caller's pipeline or MULTI, to save
        a round trip); the caller then calls :meth:`prune_if_due`."""
        summary_key = self.keys.email(email_id)
        events_key = self.keys.email_events(email_id)
        mapping: dict[str, str | int | float] = {**(fields or {}), "updated_at": time.time()}
        if target is not None:
            mapping[f"t:{target.webhook_id}"] = f"{target.state}|{target.name}"
        pipe.hset(summary_key, mapping=mapping)  # type: ignore[arg-type]
        if events:
            pipe.rpush(events_key, *(_encoder.encode(e) for e in events))
            pipe.expire(events_key, self.ttl_s)
        pipe.expire(summary_key, self.ttl_s)
        if received_at is not None:
            pipe.zadd(self.keys.emails_index, {email_id: received_at}, nx=True)

    async def prune_if_due(self) -> None:
        """:meth:`prune`, at most once per :data:`PRUNE_INTERVAL_S`."""
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL_S
            await self.prune(now)

    async def prune(self, now: float) -> int:
        """Drop emails past the retention or beyond the count cap; returns how many."""
        index = self.keys.emails_index
        expired = list(await self.redis.zrangebyscore(index, "-inf", now - self.ttl_s))
        excess = int(await self.redis.zcard(index)) - len(expired) - self.max_emails
        oldest = (
            list(await self.redis.zrange(index, len(expired), len(expired) + excess - 1))
            if excess > 0
            else []
        )
        gone = [_text(i) for i in [*expired, *oldest] if isinstance(i, bytes | str)]
        if not gone:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(gone), 500):
                chunk = gone[start : start + 500]
                pipe.zrem(index, *chunk)
                pipe.delete(
                    *(k for e in chunk for k in (self.keys.email(e), self.keys.email_events(e)))
                )
            await pipe.execute()
        return len(gone)


async def get_email(redis: Redis, keys: Keys, email_id: str) -> EmailDetail | None:
    """The whole timeline of one email, or None when unknown (or expired)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.email(email_id))
        pipe.lrange(keys.email_events(email_id), 0, -1)
        fields, raw_events = await pipe.execute()
    summary = _summary(email_id, fields)
    if summary is None:
        return None
    events: list[TimelineEvent] = []
    for raw in raw_events:
        try:
            events.append(_event_decoder.decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    attempts = [
        TimedAttempt(**msgspec.structs.asdict(e.attempt), at=e.at)
        for e in events
        if e.attempt is not None
    ]
    return EmailDetail(**msgspec.structs.asdict(summary), events=events, attempts=attempts)


def _matches(summary: EmailSummary, state: str | None, query: str) -> bool:
    if state and summary.state != state:
        return False
    if not query:
        return True
    haystack = f"{summary.subject}\n{summary.sender}\n{summary.email_id}".lower()
    return query in haystack


async def list_emails(
    redis: Redis,
    keys: Keys,
    *,
    state: str | None = None,
    query: str = "",
    limit: int = 50,
    before: float | None = None,
) -> tuple[list[EmailSummary], float | None]:
    """Newest first, filtered; returns the page and the cursor of the next one (or None).

    ``before``: only emails received strictly before this time (the cursor).
    """
    query = query.strip().lower()
    found: list[EmailSummary] = []
    upper = "+inf" if before is None else f"({before!r}"
    batch = 200
    while len(found) < limit:
        rows: list[tuple[bytes, float]] = await redis.zrevrangebyscore(  # type: ignore[assignment]
            keys.emails_index, upper, "-inf", start=0, num=batch, withscores=True
        )
        if not rows:
            return found, None
        async with redis.pipeline(transaction=False) as pipe:
            for email_id, _ in rows:
                pipe.hgetall(keys.email(_text(email_id)))
            summaries = await pipe.execute()
        for (email_id, score), fields in zip(rows, summaries, strict=True):
            summary = _summary(_text(email_id), fields)
            if summary is not None and _matches(summary, state, query):
                found.append(summary)
                if len(found) == limit:
                    return found, score
        upper = f"({rows[-1][1]!r}"
        if len(rows) < batch:
            return found, None
    return found, None
