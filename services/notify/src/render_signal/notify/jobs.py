"""Durable per-(email, target) delivery jobs: a Redis hash plus a due-time ZSET.

* ``<prefix>notify:jobs`` (hash): webhook-id -> job JSON (:class:`Job`).
* ``<prefix>notify:scheduled`` (ZSET): webhook-id scored by the Unix time it
  is due (deferral, retry, rate limit) or, while a worker holds it, by the
  end of its lease -- so a crash mid-send only delays the item.
* ``<prefix>notify:leases`` (hash): webhook-id -> instance name holding the
  lease, written in the same script / transaction as the lease score and
  cleared when the job is re-parked or finished. A restarted replica (same
  stable instance name) takes back its own leftovers at once
  (:meth:`JobQueue.recover`); a lease whose holder's liveness key
  (``common.liveness``) is gone is released by any live replica
  (:meth:`JobQueue.release_dead`, about every second), so a dead replica's jobs
  are due again within the liveness TTL whatever its name; a draining replica
  releases its own at the end (:meth:`JobQueue.release`). The lease end stays
  the backstop for a holder that is alive but stuck past it.
* ``<prefix>notify:sent:<webhook-id>``: SET NX EX 30 d after a 2xx; nothing
  is sent again for that id.
* ``<prefix>notify:final:<webhook-id>``: dead-lettered or dropped (30 d),
  cleared by a replay.

A job is created *light*: its record has the event without its bodies and
names the ``mail.offloaded`` entry that has them (:attr:`Job.event_entry`):
most jobs are sent at once and removed, and writing the bodies into the record
(~100 KB of JSON) was the largest cost of a delivery (issue 16). A record is
light only while its creating handler runs: the entry stays unacknowledged
until the handler returns, which is once each job it created is finished or
stored in full. Anyone else reading a light record (the scheduler after a
crash, a redelivery) first completes it from the entry (:meth:`JobQueue.hydrate`)
or from the event in hand.

(Just over 300 lines: the record, its scripts' callers and the light-record
rules are one contract and read best together.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError
from render_signal.common.errors import MalformedEvent
from render_signal.common.events import MailOffloaded, decode_entry
from render_signal.common.keys import Keys
from render_signal.common.streams import read_range
from render_signal.notify.jobscripts import (
    CLAIM,
    CREATE_LEASED,
    RECOVER,
    RELEASE_DEAD,
    STORE_FULL,
    TAKE_OVER,
)
from render_signal.notify.targets import Target

__all__ = ["CREATED", "EXISTS", "FINISHED", "SENT_TTL_S", "Due", "Job", "JobQueue"]

SENT_TTL_S = 30 * 86400
#: What :meth:`JobQueue.create` found.
FINISHED, EXISTS, CREATED = -1, 0, 1


class Job(msgspec.Struct, kw_only=True):
    """One email for one target, with its delivery state."""

    webhook_id: str
    event: MailOffloaded
    target: Target
    attempt: int = 0
    first_attempt_at: float | None = None
    created_at: float = 0.0
    deferred: bool = False
    #: Set in a light record only (module docstring): the ``mail.offloaded`` entry
    #: holding the bodies this record's event lacks. Jobs in memory are full ("").
    event_entry: str = ""


class Due(NamedTuple):
    """What a claim leased, and the schedule's and dead-letter stream's sizes after it."""

    ids: list[str]
    scheduled: int
    dead_letters: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Job)


class JobQueue:
    def __init__(self, redis: Redis, keys: Keys, instance: str) -> None:
        self.redis = redis
        self.keys = keys
        self.instance = instance
        self.jobs_key = keys.notify_jobs
        self.schedule_key = keys.notify_scheduled
        self.leases_key = keys.notify_leases
        self._claim = redis.register_script(CLAIM)
        self._create_leased = redis.register_script(CREATE_LEASED)
        self._recover = redis.register_script(RECOVER)
        self._take_over = redis.register_script(TAKE_OVER)
        self._release_dead = redis.register_script(RELEASE_DEAD)
        self._store_full = redis.register_script(STORE_FULL)
        self.live_prefix = keys.liveness("")

    def sent_key(self, webhook_id: str) -> str:
        return self.keys.notify_sent(webhook_id)

    def final_key(self, webhook_id: str) -> str:
        return self.keys.notify_final(webhook_id)

    @staticmethod
    def encode(job: Job) -> bytes:
        return _encoder.encode(job)

    @staticmethod
    def encode_light(job: Job, entry_id: str) -> bytes:
        """``job``'s light record, its bodies in ``mail.offloaded`` entry ``entry_id``."""
        event = msgspec.structs.replace(job.event, body_text="", body_html="")
        return _encoder.encode(msgspec.structs.replace(job, event=event, event_entry=entry_id))

    @staticmethod
    def decode(raw: bytes) -> Job:
        return _decoder.decode(raw)

    async def create(self, job: Job, lease_until: float) -> int:
        """Store a new job leased by this instance until ``lease_until``.

        Returns :data:`CREATED`, :data:`EXISTS` (a job is stored for this id) or
        :data:`FINISHED` (sent or finished for good); only CREATED writes anything.
        """
        created, _ = await self.create_and_read(job, lease_until)
        return created

    async def create_and_read(
        self,
        job: Job,
        lease_until: float,
        reads: Callable[[Pipeline], object] | None = None,
        *,
        record: bytes | None = None,
    ) -> tuple[int, list[Any]]:
        """:meth:`create`, with the replies of the commands ``reads`` adds to the same
        MULTI (after the creation): the reads the job's first step needs, in the
        creation's round trip. ``record``: what to store (:meth:`encode_light`),
        ``job`` in full by default."""
        keys = [
            self.jobs_key,
            self.schedule_key,
            self.leases_key,
            self.sent_key(job.webhook_id),
            self.final_key(job.webhook_id),
        ]
        args = [job.webhook_id, repr(lease_until), self.instance]
        if record is None:
            record = self.encode(job)
        for attempt in (1, 2):
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.hsetnx(self.jobs_key, job.webhook_id, record)
                    pipe.evalsha(self._create_leased.sha, len(keys), *keys, *args)
                    if reads is not None:
                        reads(pipe)
                    replies: list[Any] = await pipe.execute()
                return int(replies[1]), replies[2:]
            except NoScriptError:
                # Redis restarted or its scripts were flushed. The MULTI ran without
                # the script: at most a record without a schedule entry, which the
                # same MULTI run again completes (or removes, when finished).
                if attempt == 2:
                    raise
                await self.redis.script_load(CREATE_LEASED)
        raise AssertionError("unreachable")

    async def put(self, job: Job, due: float) -> None:
        """Park the job until ``due``, releasing any lease on it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.jobs_key, job.webhook_id, self.encode(job))
            pipe.zadd(self.schedule_key, {job.webhook_id: due})
            pipe.hdel(self.leases_key, job.webhook_id)
            await pipe.execute()

    async def take_over(self, webhook_id: str, until: float) -> bool:
        """Lease a scheduled job to this instance unless a lease holder is recorded.

        A recorded holder is either a live worker (this process or another
        replica) or a previous life of this one, which :meth:`recover` handles.
        """
        taken = await self._take_over(
            keys=[self.schedule_key, self.leases_key],
            args=[webhook_id, repr(until), self.instance],
        )
        return bool(taken)

    async def recover(self, now: float) -> int:
        """Make every job leased by this instance due at ``now``; returns how many.

        Only a previous life of this replica can hold such a lease, so call it
        before this process claims anything.
        """
        return int(
            await self._recover(
                keys=[self.schedule_key, self.leases_key], args=[self.instance, repr(now)]
            )
        )

    async def release(self, now: float) -> int:
        """Hand back every job this instance still leases (due at ``now``), at the end
        of a drain: the same script as :meth:`recover`, from the other end of a life."""
        return await self.recover(now)

    async def release_dead(self, now: float) -> dict[str, int]:
        """Make the jobs of lease holders without a liveness key due at ``now``.

        Returns how many were released per dead holder.
        """
        holders: Any = await self._release_dead(
            keys=[self.schedule_key, self.leases_key],
            args=[self.live_prefix, repr(now), self.instance],
        )
        released: dict[str, int] = {}
        for raw in holders:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            released[name] = released.get(name, 0) + 1
        return released

    async def holder(self, webhook_id: str) -> str | None:
        raw: Any = await self.redis.hget(self.leases_key, webhook_id)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def get(self, webhook_id: str) -> Job | None:
        raw: Any = await self.redis.hget(self.jobs_key, webhook_id)
        if raw is None:
            return None
        try:
            return self.decode(raw)
        except msgspec.DecodeError:
            return None

    async def store_full(self, job: Job, light_entry: str) -> bool:
        """Store ``job`` in full if its record is still light, naming ``light_entry``."""
        if not light_entry:
            return False
        needle = '"event_entry":' + _encoder.encode(light_entry).decode()
        stored = await self._store_full(
            keys=[self.jobs_key], args=[job.webhook_id, needle, self.encode(job)]
        )
        return bool(stored)

    async def hydrate(self, job: Job) -> Job | None:
        """``job`` in full (:meth:`complete` from its entry); None without that entry."""
        if not job.event_entry:
            return job
        rows = await read_range(
            self.redis, self.keys.mail_offloaded, start=job.event_entry, end=job.event_entry
        )
        try:
            event = decode_entry(rows[0][1], MailOffloaded) if rows else None
        except MalformedEvent:
            event = None
        if event is None or event.email_id != job.event.email_id:
            return None
        return await self.complete(job, event)

    async def complete(self, job: Job, event: MailOffloaded) -> Job:
        """Light ``job`` with ``event`` (its email, bodies included), stored so."""
        full = msgspec.structs.replace(job, event=event, event_entry="")
        await self.store_full(full, job.event_entry)
        return full

    async def done(self, webhook_id: str, also: Callable[[Pipeline], object] | None = None) -> None:
        """Forget the job (schedule, record, lease); ``also`` adds commands to the
        same transaction (the caller's own clean-up, without a round trip of its own)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.stage_done(pipe, webhook_id)
            if also is not None:
                also(pipe)
            await pipe.execute()

    def stage_done(self, pipe: Pipeline, webhook_id: str) -> None:
        """:meth:`done`'s commands, added to a caller's MULTI."""
        pipe.zrem(self.schedule_key, webhook_id)
        pipe.hdel(self.jobs_key, webhook_id)
        pipe.hdel(self.leases_key, webhook_id)

    async def claim_due(self, now: float, lease_until: float, limit: int) -> Due:
        """Lease up to ``limit`` due ids to this instance until ``lease_until``."""
        scheduled, dead, ids = await self._claim(
            keys=[self.schedule_key, self.leases_key, self.keys.notify_dead_letters],
            args=[repr(now), repr(lease_until), limit, self.instance],
        )
        return Due([i.decode() if isinstance(i, bytes) else str(i) for i in ids], scheduled, dead)

    def stage_mark_sent(self, pipe: Pipeline, webhook_id: str) -> None:
        """Record the 2xx in a caller's pipeline; its reply is false when it was
        already recorded (a redelivery)."""
        pipe.set(self.sent_key(webhook_id), "1", nx=True, ex=SENT_TTL_S)

    def stage_is_finished(self, pipe: Pipeline, webhook_id: str) -> None:
        """Whether the webhook was sent or finished for good (the reply is non-zero
        then), in a caller's pipeline; the creation script checks the same keys."""
        pipe.exists(self.sent_key(webhook_id), self.final_key(webhook_id))

    async def mark_final(self, webhook_id: str, state: str) -> None:
        await self.redis.set(self.final_key(webhook_id), state, ex=SENT_TTL_S)

    async def count(self) -> int:
        return int(await self.redis.zcard(self.schedule_key))
