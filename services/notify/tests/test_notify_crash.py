"""(4) SIGKILL between the receiver's reply and the ack; SIGTERM restart never resends.

Also: a restart takes back its own in-flight scheduled jobs at once (not after
the lease) while other replicas' leases stand, and the heartbeat shows the
config versions notify has loaded.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import msgspec
from notify_harness import Harness, make_event, make_settings, paris
from notify_proc import INSTANCE, heartbeat_info, start_notify, wait_exit
from redis.asyncio import Redis
from render_signal.common.configdocs import RoutingRules, WebhookConfig
from render_signal.common.configstore import ConfigStore
from render_signal.common.events import MailOffloaded
from render_signal.common.keys import STREAM_MAIL_OFFLOADED, Keys, consumer_name
from render_signal.common.streams import ensure_group, publish
from render_signal.common.webhooklog import read_attempts
from render_signal.devstack.clock import ManualClock
from render_signal.devstack.polling import eventually
from render_signal.devstack.receiver import Receiver
from render_signal.notify.jobs import CREATED, Job, JobQueue
from render_signal.notify.signing import webhook_id
from render_signal.notify.targets import Target

OTHER = consumer_name("notify", "other-replica")
MINE = consumer_name("notify", INSTANCE)


async def wait_settled(redis: Redis, stream: str, entry_id: str, wid: str, prefix: str) -> None:
    """Until the group has delivered and acked ``entry_id`` and the send is recorded."""

    async def settled() -> bool:
        groups = await redis.xinfo_groups(stream)
        group = next(g for g in groups if g["name"] == b"notify")
        last = group["last-delivered-id"].decode()
        sent = await redis.exists(f"{prefix}notify:sent:{wid}")
        return bool(group["pending"] == 0 and last >= entry_id and sent)

    await eventually(settled, 30, "notify to settle")


async def successes(redis: Redis, prefix: str, email_id: str) -> int:
    logs = msgspec.to_builtins(await read_attempts(redis, Keys(prefix), 30, limit=500))
    return sum(1 for e in logs if e["email_id"] == email_id and e["status"] == "success")


async def test_sigkill_after_send_before_ack_then_restart(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    entry = await publish(redis, stream, event)
    proc = start_notify(redis_url, key_prefix, rx, tmp_path, fault="notify.after_send")
    try:
        rx.wait_for(1, timeout_s=30)
        assert wait_exit(proc) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    pending = await redis.xpending(stream, "notify")
    assert pending["pending"] == 1  # the entry was never acked
    wid = rx.ids()[0]
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        await wait_settled(redis, stream, entry, wid, key_prefix)
        assert 1 <= len(rx.requests) <= 2
        assert set(rx.ids()) == {wid}
        # The job was light when the process died (notify.jobs): a resend after the
        # restart still carries the whole email.
        contents = {json.loads(r.body)["email_content"] for r in rx.requests}
        assert contents == {event.body_html or event.body_text}
        # The attempt log is written just after the send is recorded.
        assert await eventually(lambda: successes(redis, key_prefix, event.email_id), 30) == 1
        # ...and the job leaves the schedule just after the log line (same handler).

        async def unscheduled() -> bool:
            return await redis.zcard(f"{key_prefix}notify:scheduled") == 0

        await eventually(unscheduled, 30, "the job to leave the schedule")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0


async def test_sigterm_restart_never_sends_twice(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    entry = await publish(redis, stream, event)
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        rx.wait_for(1, timeout_s=30)
        wid = rx.ids()[0]
        await wait_settled(redis, stream, entry, wid, key_prefix)
    finally:
        proc.send_signal(signal.SIGTERM)
    assert wait_exit(proc) == 0
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        # The same event published again (an upstream redelivery) is not re-sent.
        again = await publish(redis, stream, event)
        await wait_settled(redis, stream, again, wid, key_prefix)
        heartbeat = f"{key_prefix}heartbeat:notify:{INSTANCE}"
        await eventually(lambda: redis.exists(heartbeat), 10, "notify's heartbeat")
        info = json.loads(await redis.get(heartbeat))
        assert info["details"]["deferred"] == 0
        assert rx.ids() == [wid]
        assert await successes(redis, key_prefix, event.email_id) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0


def job_for(event: MailOffloaded, url: str, now: float) -> Job:
    target = Target(url=url, target_class="custom")
    wid = webhook_id(event.email_id, target.key())
    return Job(webhook_id=wid, event=event, target=target, created_at=now)


async def test_restart_recovers_own_leased_retry_at_once_not_other_replicas(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    queue = JobQueue(redis, Keys(key_prefix), MINE)
    # Another live replica (its liveness key is there) holds a lease on some
    # other job: it must stand.
    await redis.set(Keys(key_prefix).liveness(OTHER), "alive", px=600_000)
    other = job_for(make_event(), rx.url, time.time())
    assert (
        await JobQueue(redis, Keys(key_prefix), OTHER).create(other, time.time() + 180) == CREATED
    )
    other_lease_end = await redis.zscore(queue.schedule_key, other.webhook_id)
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    await publish(redis, stream, event)
    rx.respond(500)  # first attempt (stream path) -> a scheduled retry ...
    rx.hold()  # ... which the scheduler leases and sends; the receiver sits on it
    proc = start_notify(redis_url, key_prefix, rx, tmp_path, WEBHOOK_RETRY_BASE_SECONDS="0.2")
    try:
        rx.wait_for(2, timeout_s=30)
        wid = rx.ids()[0]
        assert rx.ids() == [wid, wid]
        assert await queue.holder(wid) == MINE
        # The stream entry is long acked: only the schedule knows about the job.
        await eventually(lambda: _no_pending(redis, stream), 30, "the entry to be acked")
    finally:
        proc.kill()
    assert wait_exit(proc) == -signal.SIGKILL
    rx.release()
    lease_end = await redis.zscore(queue.schedule_key, wid)
    assert lease_end is not None
    assert lease_end > time.time() + 150  # default timeout 30 s -> a 180 s lease
    assert await queue.holder(wid) == MINE

    restarted = time.time()
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        rx.wait_for(3, timeout_s=60)
        await eventually(lambda: redis.exists(queue.sent_key(wid)), 30, "the send to be recorded")
        delivered = rx.requests[2].at
        print(f"recovered and delivered {delivered - restarted:.2f} s after the restart")
        assert rx.ids()[2] == wid
        assert delivered < lease_end  # the lease was not waited out
        assert time.time() < lease_end
        # The attempt log is written just after the send is recorded.
        assert await eventually(lambda: successes(redis, key_prefix, event.email_id), 30) == 1
        assert await queue.holder(wid) is None
        assert await redis.zscore(queue.schedule_key, wid) is None
        log = proc.log_path.read_text()
        assert "recovered 1 in-flight job(s) from a previous run" in log
        # The other replica's lease is untouched, and its job was not sent.
        assert await redis.zscore(queue.schedule_key, other.webhook_id) == other_lease_end
        assert await queue.holder(other.webhook_id) == OTHER
        assert other.webhook_id not in rx.ids()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0


async def test_dead_replicas_lease_is_taken_over_within_seconds_not_after_it(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    """A replica under another name (a rescheduled pod) died holding a lease of
    180 s; the running replica sends the job once that replica's liveness key is
    gone -- while a job leased by a live replica stays untouched."""
    keys = Keys(key_prefix)
    dead, alive = consumer_name("notify", "pod-gone"), consumer_name("notify", "pod-alive")
    await redis.set(keys.liveness(alive), "alive", px=600_000)
    orphan, busy = job_for(make_event(), rx.url, time.time()), job_for(make_event(), rx.url, 0)
    lease_end = time.time() + 180
    assert await JobQueue(redis, keys, dead).create(orphan, lease_end) == CREATED
    assert await JobQueue(redis, keys, alive).create(busy, lease_end) == CREATED
    await redis.set(keys.liveness(dead), "dying", px=2000)  # its last renewal, 2 s left
    started = time.monotonic()
    proc = start_notify(redis_url, key_prefix, rx, tmp_path, LIVENESS_TTL_SECONDS="2")
    try:
        rx.wait_for(1, timeout_s=30)
        taken_s = time.monotonic() - started
        print(f"dead replica's job sent {taken_s:.2f}s after notify started (lease 180 s)")
        assert rx.ids() == [orphan.webhook_id]
        await eventually(lambda: redis.exists(keys.notify_sent(orphan.webhook_id)), 30, "sent")
        log = proc.log_path.read_text()
        assert f"took over 1 in-flight job(s) of {dead} (no liveness key)" in log
        assert await JobQueue(redis, keys, alive).holder(busy.webhook_id) == alive
        assert await redis.zscore(keys.notify_scheduled, busy.webhook_id) == lease_end
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0
    assert rx.ids() == [orphan.webhook_id], "the live replica's job was not sent"
    assert await redis.get(keys.liveness(MINE)) is None, "liveness released at exit"


async def test_sigterm_hands_back_leased_jobs(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    """Scale-down: a job whose send is still running at the drain deadline is due
    again at exit, with no lease, for the other replicas."""
    keys = Keys(key_prefix)
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    await publish(redis, stream, event)
    rx.hold()  # the receiver sits on the send past the drain deadline
    proc = start_notify(redis_url, key_prefix, rx, tmp_path, DRAIN_TIMEOUT_SECONDS="1")
    try:
        rx.wait_for(1, timeout_s=30)
        wid = rx.ids()[0]
        assert await JobQueue(redis, keys, MINE).holder(wid) == MINE
    finally:
        proc.send_signal(signal.SIGTERM)
        code = wait_exit(proc)
        rx.release()
    assert code == 0
    assert await JobQueue(redis, keys, MINE).holder(wid) is None
    due = await redis.zscore(keys.notify_scheduled, wid)
    assert due is not None and due <= time.time(), "due now, not at the lease end"
    assert "handed back 1 in-flight job(s) at shutdown" in proc.log_path.read_text()


async def _no_pending(redis: Redis, stream: str) -> bool:
    return (await redis.xpending(stream, "notify"))["pending"] == 0


async def test_recover_takes_back_only_own_leases_and_never_resends(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver
) -> None:
    start = paris(2026, 3, 30, 10, 0)
    settings = make_settings(
        redis_url, key_prefix, WEBHOOK_URL=rx.url, RENDER_SIGNAL_INSTANCE=INSTANCE
    )
    h = Harness(redis, settings, ManualClock(start))
    try:
        lease_end = start + h.service.lease_s
        # Leftovers of this replica's previous life: one whose send never
        # completed, one whose 2xx was recorded just before the crash.
        pending, sent = make_event(), make_event()
        mine = job_for(pending, rx.url, start)
        done = job_for(sent, rx.url, start)
        theirs_event = make_event()
        theirs = job_for(theirs_event, rx.url, start)
        assert await h.service.queue.create(mine, lease_end) == CREATED
        assert await h.service.queue.create(done, lease_end) == CREATED
        assert await redis.set(h.service.queue.sent_key(done.webhook_id), "1", nx=True)
        assert await JobQueue(redis, Keys(key_prefix), OTHER).create(theirs, lease_end) == CREATED

        assert await h.scheduler.recover() == 2
        assert await h.redis.zscore(h.service.queue.schedule_key, mine.webhook_id) == start
        assert await h.service.queue.holder(mine.webhook_id) is None
        assert await h.scheduler.recover() == 0  # idempotent
        assert await h.tick() == 2
        assert rx.ids() == [mine.webhook_id]  # the already-sent one is not sent again
        assert await h.service.queue.get(done.webhook_id) is None
        # The other replica's lease stands, even against a redelivered entry.
        await h.emit(theirs_event, deliveries=2)
        assert await h.tick() == 0
        assert rx.ids() == [mine.webhook_id]
        assert await h.redis.zscore(h.service.queue.schedule_key, theirs.webhook_id) == lease_end
        assert await h.service.queue.holder(theirs.webhook_id) == OTHER
        # ... until it is over.
        h.clock.set(lease_end)
        assert await h.tick() == 1
        assert rx.ids() == [mine.webhook_id, theirs.webhook_id]
        assert await h.service.queue.count() == 0
        assert await redis.hlen(h.service.queue.leases_key) == 0
    finally:
        await h.aclose()


async def test_heartbeat_reports_loaded_config_versions(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    await store.write(RoutingRules())
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)

    async def versions() -> dict[str, int]:
        return dict((await heartbeat_info(redis, key_prefix)).get("config_versions") or {})

    try:
        seen = await eventually(versions, 30, "config_versions in the heartbeat")
        assert seen["routing_rules"] == 1
        assert seen["webhook_config"] == 0  # never written
        # A change made while notify is idle shows up without any email.
        await store.write(RoutingRules())
        await store.write(WebhookConfig(webhook_time_start="09:00", webhook_time_end="18:00"))

        async def changed() -> bool:
            now = await versions()
            return now.get("routing_rules") == 2 and now.get("webhook_config") == 1

        assert await eventually(changed, 30, "the new versions in the heartbeat")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0
