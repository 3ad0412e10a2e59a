"""Light job records (``notify.jobs`` docstring): a job sent at once never has its
bodies written into its record; one that must wait is stored in full; whoever
reads a light record (the scheduler after a crash, a redelivery) completes it
from its ``mail.offloaded`` entry, and without that entry nothing is sent."""

from __future__ import annotations

import asyncio
import json

from notify_harness import Factory, Harness, make_event, paris
from render_signal.common.events import MailOffloaded
from render_signal.common.streams import Delivery, ensure_group, publish
from render_signal.devstack.receiver import Receiver
from render_signal.notify.jobs import CREATED, Job, JobQueue
from render_signal.notify.service import RECHECK_S
from render_signal.notify.signing import webhook_id
from render_signal.notify.targets import Target

START = paris(2026, 3, 30, 10, 0)  # inside the default window
BODY = "Bonjour, à faire pour 11h30. Le texte entier doit arriver au récepteur. " * 40


def content_of(event: MailOffloaded) -> str:
    """``email_content`` as the payload builds it for a gmail_push email."""
    return event.body_html or event.body_text


async def stored(h: Harness, wid: str) -> Job | None:
    raw = await h.redis.hget(h.service.queue.jobs_key, wid)
    return None if raw is None else JobQueue.decode(raw)


async def entry_of(h: Harness, event: MailOffloaded) -> str:
    stream = h.keys.mail_offloaded
    await ensure_group(h.redis, stream, "notify", "0")
    return await publish(h.redis, stream, event)


async def light_job(
    h: Harness,
    event: MailOffloaded,
    entry: str,
    url: str,
    lease_until: float,
    queue: JobQueue | None = None,
) -> Job:
    """What a handler that died (or still runs, ``queue``'s) after creating its job
    leaves: a light record."""
    job = Job(
        webhook_id=webhook_id(event.email_id, "default"),
        event=event,
        target=Target(url=url, target_class="custom"),
        created_at=h.clock.now(),
    )
    record = JobQueue.encode_light(job, entry)
    created, _ = await (queue or h.service.queue).create_and_read(job, lease_until, record=record)
    assert created == CREATED
    return job


async def test_the_record_is_light_while_sent_and_full_once_it_must_wait(
    make: Factory, rx: Receiver
) -> None:
    h = make(start=START)
    event = make_event(body_html="", body_text=BODY)
    entry = await entry_of(h, event)
    rx.hold()  # the first request waits, then its connection drops: a retry
    handling = asyncio.create_task(
        h.service.handle_event(event, Delivery(entry, 1, h.keys.mail_offloaded))
    )
    [request] = await asyncio.to_thread(rx.wait_for, 1)
    wid = request.webhook_id
    assert json.loads(request.body)["email_content"] == BODY
    while_sent = await stored(h, wid)
    assert while_sent is not None
    assert while_sent.event_entry == entry
    assert (while_sent.event.body_text, while_sent.event.body_html) == ("", "")
    assert while_sent.event.subject == event.subject  # only the bodies are left out
    rx.release()
    await handling
    parked = await stored(h, wid)
    assert parked is not None
    assert parked.event_entry == ""
    assert parked.event == event
    assert parked.attempt == 1
    # The retry comes from the record alone, bodies included.
    await h.redis.xtrim(h.keys.mail_offloaded, maxlen=0)
    h.clock.advance(3600)
    assert await h.tick() == 1
    second = rx.wait_for(2)[-1]
    assert json.loads(second.body)["email_content"] == BODY
    assert await stored(h, wid) is None


async def test_the_scheduler_completes_a_light_record_from_its_entry(
    make: Factory, rx: Receiver
) -> None:
    h = make(start=START)
    event = make_event(body_html="", body_text=BODY)
    entry = await entry_of(h, event)
    job = await light_job(h, event, entry, rx.url, lease_until=h.clock.now())
    assert await h.tick() == 1
    [request] = rx.wait_for(1)
    assert request.webhook_id == job.webhook_id
    assert json.loads(request.body)["email_content"] == content_of(event) == BODY
    assert await stored(h, job.webhook_id) is None
    assert await h.redis.exists(h.service.queue.sent_key(job.webhook_id))


async def test_a_light_record_without_its_entry_waits_until_the_event_comes_again(
    make: Factory, rx: Receiver
) -> None:
    h = make(start=START)
    event = make_event(body_html="", body_text=BODY)
    await ensure_group(h.redis, h.keys.mail_offloaded, "notify", "0")
    job = await light_job(h, event, "1-1", rx.url, lease_until=h.clock.now())  # no such entry
    assert await h.tick() == 1
    assert rx.requests == []  # never sent without its bodies
    waiting = await stored(h, job.webhook_id)
    assert waiting is not None and waiting.event_entry == "1-1"
    due = await h.redis.zscore(h.service.queue.schedule_key, job.webhook_id)
    assert due == h.clock.now() + RECHECK_S
    # The event again (a replayed dead letter: a new entry, first delivery)
    # completes the record; the scheduler then sends it whole.
    again = await entry_of(h, event)
    await h.service.handle_event(event, Delivery(again, 1, h.keys.mail_offloaded))
    assert rx.requests == []
    completed = await stored(h, job.webhook_id)
    assert completed is not None
    assert completed.event_entry == "" and completed.event == event
    h.clock.advance(RECHECK_S)
    assert await h.tick() == 1
    [request] = rx.wait_for(1)
    assert json.loads(request.body)["email_content"] == BODY


async def test_a_redelivery_completes_a_light_record_another_replica_leases(
    make: Factory, rx: Receiver
) -> None:
    """The entry comes back while another replica's lease stands: not sent from
    here, but the record no longer depends on the entry, which is acked next."""
    h = make(start=START)
    event = make_event(body_html="", body_text=BODY)
    entry = await entry_of(h, event)
    other = JobQueue(h.redis, h.keys, "notify:other-replica")
    job = await light_job(h, event, entry, rx.url, h.clock.now() + 600, queue=other)
    await h.service.handle_event(event, Delivery(entry, 2, h.keys.mail_offloaded))
    assert rx.requests == []
    completed = await stored(h, job.webhook_id)
    assert completed is not None
    assert completed.event_entry == "" and completed.event == event
    # Storing in full never overwrites a newer state: the record is no longer light.
    assert not await h.service.queue.store_full(job, entry)
