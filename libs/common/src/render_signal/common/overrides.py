"""Operator overrides of notify's schedule: "retry now" and "look again now".

notify keeps every pending delivery in ``<p>notify:scheduled`` (a ZSET scored
by when it is due, or by the end of a replica's lease while it is being sent;
``<p>notify:leases`` names the holder). Two writers outside the send path move
jobs forward, and both go through :func:`make_due`, which never touches a
leased job: setting a leased job due would let a second replica send it while
the first is still waiting for the receiver.

* notify's scheduler, when Absence Globale, the window or the sending switch
  changes: every held job is due now and decided again under the new rules.
* the gateway's ``POST /api/emails/{id}/retry`` (:func:`retry_email`): for
  each of the email's targets that is retrying, deferred or dead-lettered, an
  override is recorded in ``<p>notify:overrides`` (notify then sends once,
  past the sending rules and the rate limit, and logs it), a dead letter is put
  back in the schedule (same ``webhook-id``), and the job is made due now.
  notify resolves the target's URL and settings when it sends, so a URL fixed
  in the meantime is the one used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis
from render_signal.common.deadletters import list_webhook_dead_letters, replay_webhook_dead_letter
from render_signal.common.keys import Keys
from render_signal.common.records import TargetState, TimelineEvent
from render_signal.common.timeline import TimelineWriter, get_email

__all__ = ["RETRYABLE", "RetryReport", "RetryTarget", "make_due", "retry_email"]

RETRYABLE: frozenset[TargetState] = frozenset({"retrying", "deferred", "dead_letter"})

# KEYS: schedule, leases. ARGV: now, ids... Jobs still scheduled and leased by
# no replica become due now; returns how many.
_MAKE_DUE = """
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], id) == 0 and redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], id)
    n = n + 1
  end
end
return n
"""


async def make_due(redis: Redis, keys: Keys, webhook_ids: Sequence[str], now: float) -> int:
    """Make the scheduled, unleased jobs among ``webhook_ids`` due at ``now``."""
    if not webhook_ids:
        return 0
    count = await redis.eval(
        _MAKE_DUE, 2, keys.notify_scheduled, keys.notify_leases, repr(now), *webhook_ids
    )
    return int(count)


class RetryTarget(msgspec.Struct, kw_only=True):
    webhook_id: str
    target: str
    state: TargetState  # before the retry
    queued: bool  # False: nothing to put back (a dead letter already trimmed, or in flight)
    note: str = ""


class RetryReport(msgspec.Struct, kw_only=True):
    email_id: str
    state: str  # the email's state before the retry
    targets: list[RetryTarget]

    @property
    def queued(self) -> int:
        return sum(1 for t in self.targets if t.queued)


async def _dead_letter_entry(redis: Redis, keys: Keys, webhook_id: str) -> str | None:
    for entry_id, letter in await list_webhook_dead_letters(redis, keys, count=10_000):
        if letter.webhook_id == webhook_id:
            return entry_id
    return None


async def retry_email(
    redis: Redis, keys: Keys, email_id: str, *, by: str, timeline: TimelineWriter
) -> RetryReport | None:
    """Send the email's retrying, deferred and dead-lettered deliveries now.

    None when the email is unknown. ``by`` (who asked) goes into the timeline.
    """
    email = await get_email(redis, keys, email_id)
    if email is None:
        return None
    now = time.time()
    report = RetryReport(email_id=email_id, state=email.state, targets=[])
    wanted = [t for t in email.targets if t.state in RETRYABLE]
    if wanted:
        await redis.hset(
            keys.notify_overrides,
            mapping={t.webhook_id: f"{by}@{now:.0f}" for t in wanted},
        )
    for target in wanted:
        item = RetryTarget(
            webhook_id=target.webhook_id, target=target.name, state=target.state, queued=True
        )
        if target.state == "dead_letter":
            entry = await _dead_letter_entry(redis, keys, target.webhook_id)
            try:
                replayed = entry is not None and (
                    await replay_webhook_dead_letter(redis, keys, entry, now=now)
                )
            except ValueError as exc:
                replayed, item.note = None, str(exc)
            if not replayed:
                item.queued = False
                item.note = item.note or "the dead letter is no longer kept"
        elif not await make_due(redis, keys, [target.webhook_id], now):
            # Leased: a replica is sending it right now; or finished meanwhile.
            item.queued = False
            item.note = "being sent right now"
        report.targets.append(item)
    stale = [t.webhook_id for t in report.targets if not t.queued]
    if stale:
        await redis.hdel(keys.notify_overrides, *stale)
    if report.queued:
        await timeline.record(
            email_id,
            *(
                TimelineEvent(
                    at=now,
                    kind="retry_requested",
                    service="gateway",
                    reason=f"retry now by {by}",
                    webhook_id=t.webhook_id,
                    target=t.target,
                )
                for t in report.targets
                if t.queued
            ),
        )
    return report
