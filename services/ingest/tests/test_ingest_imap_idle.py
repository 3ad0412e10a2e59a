"""IDLE push, checkpointing, truncation and first-start behaviour against real Dovecot."""

from __future__ import annotations

import asyncio
import time

from ingest_testkit import make_email, message_id_of, metric, mid, raw_events
from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.events import MailReceived, decode_entry
from render_signal.common.keys import Keys, consumer_name
from render_signal.common.settings import EnvReader
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually
from render_signal.ingest.checkpoint import CheckpointStore
from render_signal.ingest.settings import read_settings
from render_signal.ingest.watcher import ImapWatcher


async def _idle(watcher: object) -> bool:
    return metric("render_signal_imap_mode", {"mode": "idle"}) == 1.0


async def test_append_during_idle_is_published_without_waiting_for_a_poll(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    poll_interval = 60.0
    settings = settings_for(
        EMAIL_POLLING_INTERVAL_SECONDS=str(poll_interval),
        SENDER_OF_INTEREST_FOR_POLLING="sender@fromsmash.com",
    )
    running = await start_watcher(settings)
    parser = _start_parser(settings, redis, running.stop)
    await eventually(lambda: _idle(running), 10, "IDLE mode")
    assert metric("render_signal_imap_connected") == 1.0

    message = make_email("Idle push", "https://www.dropbox.com/scl/fi/abc/file.zip?dl=0")
    appended_at = time.time()
    uid = dovecot.append(message)

    async def published() -> list:
        return [e for e in await raw_events(redis, key_prefix) if message_id_of(e) == mid(message)]

    (event,) = await eventually(published, poll_interval, "the mail.raw entry")
    elapsed = event.trace["published"] - appended_at
    print(f"\nIMAP IDLE: APPEND -> mail.raw publish in {elapsed:.3f}s")
    # Only IDLE can explain a publish before the first poll would even have started.
    assert elapsed < poll_interval

    box = await CheckpointStore(redis, Keys(key_prefix)).load("INBOX")
    assert box is not None
    assert event.event_id == f"imap:INBOX:{box.uidvalidity}:{uid}"
    assert (event.source, event.mailbox, event.uid, event.truncated) == (
        "imap",
        "INBOX",
        uid,
        False,
    )
    assert event.raw.rstrip() == message.rstrip()
    assert event.imap_arrived_at is not None
    assert event.imap_arrived_at <= event.trace["published"]
    assert event.trace["imap_seen"] == event.imap_arrived_at
    await eventually(
        lambda: _checkpoint_at(redis, key_prefix, uid), 5, "checkpoint advanced to the UID"
    )
    await eventually(lambda: _seen(dovecot, uid), 5, "\\Seen set after publishing")
    owner = consumer_name("ingest", settings.common.instance)
    assert (await running.watcher.lock.holder() or "").startswith(f"{owner}:")
    assert await redis.exists("render_signal:poller_lock".replace("render_signal:", key_prefix))
    if parser is not None:  # the parser consumer exists: the email also reaches mail.received

        async def received() -> list:
            entries = await redis.xrange(f"{key_prefix}mail.received")
            return [decode_entry(fields, MailReceived) for _, fields in entries]

        (parsed,) = await eventually(received, 10, "the mail.received entry")
        assert parsed.subject == "Idle push"
        assert [link.provider for link in parsed.links] == ["dropbox"]
        running.stop.set()
        await asyncio.wait_for(parser, 20)


def _start_parser(settings, redis: Redis, stop: asyncio.Event) -> asyncio.Task | None:
    try:
        from render_signal.ingest.parser_service import run_parser
    except ImportError:
        return None
    return asyncio.create_task(run_parser(settings, redis, stop))


async def _checkpoint_at(redis: Redis, key_prefix: str, uid: int) -> bool:
    box = await CheckpointStore(redis, Keys(key_prefix)).load("INBOX")
    return box is not None and box.last_uid >= uid


async def _seen(dovecot: DovecotServer, uid: int) -> bool:
    return b"\\Seen" in dovecot.flags(uid)


async def test_first_start_relays_unseen_only_and_oversized_mail_is_truncated(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    already_read = make_email("old and read")
    unread = make_email("old but unread")
    dovecot.append(already_read, flags=(b"\\Seen",))
    dovecot.append(unread)
    big = make_email("big one", "x" * 8000)
    settings = settings_for(MAX_EMAIL_BYTES="2048", IMAP_MARK_SEEN="false")
    running = await start_watcher(settings)
    await eventually(lambda: _idle(running), 10, "IDLE mode")
    big_uid = dovecot.append(big)

    async def two() -> list:
        events = await raw_events(redis, key_prefix)
        return events if len(events) >= 2 else []

    events = await eventually(two, 10, "two entries")
    by_mid = {message_id_of(e): e for e in events}
    assert set(by_mid) == {mid(unread), mid(big)}  # the read one is not replayed
    truncated = by_mid[mid(big)]
    assert truncated.truncated is True
    assert truncated.original_size == len(big)
    assert truncated.uid == big_uid
    assert b"Subject: big one" in truncated.raw
    assert len(truncated.raw) < len(big)
    assert len(truncated.raw) <= 2048 + 1024  # headers + at most MAX_EMAIL_BYTES of body
    assert b"\\Seen" not in dovecot.flags(big_uid)  # IMAP_MARK_SEEN=false, BODY.PEEK


async def test_uidvalidity_change_rebaselines_without_replaying_the_mailbox(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    for i in range(3):
        dovecot.append(make_email(f"history {i}"))  # unseen, but older than the checkpoint
    # A checkpoint from another UID space, whose last processed mail is newer than history.
    await CheckpointStore(redis, Keys(key_prefix)).advance("INBOX", 1, 999, time.time() + 2)
    settings = settings_for()
    before = metric("render_signal_imap_uidvalidity_changes_total")
    running = await start_watcher(settings)
    await eventually(lambda: _idle(running), 10, "IDLE mode")
    assert metric("render_signal_imap_uidvalidity_changes_total") == before + 1
    store = CheckpointStore(redis, Keys(key_prefix))
    box = await store.load("INBOX")
    assert box is not None
    assert box.uidvalidity != 1
    assert box.last_uid == 3
    assert await raw_events(redis, key_prefix) == []

    fresh = make_email("after the reset")
    uid = dovecot.append(fresh)

    async def one() -> list:
        return await raw_events(redis, key_prefix)

    (event,) = await eventually(one, 10, "the new mail")
    assert message_id_of(event) == mid(fresh)
    assert event.uid == uid == 4


async def test_default_lock_key_is_exactly_the_originals(
    ingest_env: dict[str, str], redis: Redis
) -> None:
    env = {k: v for k, v in ingest_env.items() if k != "REDIS_KEY_PREFIX"}
    reader = EnvReader(env, {})
    settings = read_settings(reader)
    reader.check()
    config = ConfigWatcher(ConfigStore(redis, settings.common.keys))
    watcher = ImapWatcher(settings, redis, config)
    assert watcher.lock.key == "render_signal:poller_lock"
    assert watcher.lock.ttl_ms == 300_000
    assert watcher.sync.checkpoints.key("INBOX") == "render_signal:ingest:imap:checkpoint:INBOX"


async def test_burst_arriving_mid_sync_is_published_without_waiting(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    """Mail announced inside a command's response is not announced again at IDLE.

    A burst from three connections lands while the watcher is fetching and
    flagging earlier mail; every message must be published long before the
    backstop re-sync (the polling interval) could explain it.
    """
    poll_interval = 120.0
    settings = settings_for(EMAIL_POLLING_INTERVAL_SECONDS=str(poll_interval))
    running = await start_watcher(settings)
    await eventually(lambda: _idle(running), 10, "IDLE mode")
    messages = [make_email(f"Burst {i}", "https://fromsmash.com/b{i}") for i in range(90)]
    started = time.monotonic()

    def send(part: list[bytes]) -> None:
        for message in part:
            dovecot.append(message)

    await asyncio.gather(*(asyncio.to_thread(send, messages[i::3]) for i in range(3)))

    async def all_published() -> bool:
        seen = {message_id_of(e) for e in await raw_events(redis, key_prefix)}
        return {mid(m) for m in messages} <= seen

    await eventually(all_published, 60, "every message of the burst")
    elapsed = time.monotonic() - started
    print(f"\nburst of {len(messages)}: all published {elapsed:.1f}s after the first APPEND")
    assert elapsed < poll_interval, "only the backstop re-sync found some of the burst"
    events = await raw_events(redis, key_prefix)
    assert len(events) == len({e.event_id for e in events}) == len(messages), "no duplicates"
