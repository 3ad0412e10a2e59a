"""A burst of mail is relayed in batches (one FETCH, one publish round trip, one
STORE each) without changing what is published: every message once, in UID
order, the checkpoint at the last UID, all of them ``\\Seen``."""

from __future__ import annotations

from ingest_testkit import make_email, message_id_of, metric, mid, raw_events
from redis.asyncio import Redis
from render_signal.common.keys import Keys
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually
from render_signal.ingest.checkpoint import CheckpointStore
from render_signal.ingest.mailbox_sync import BATCH_BYTES, BATCH_MESSAGES, MailboxSync, _Message


def _sync(max_email_bytes: int) -> MailboxSync:
    # _batches reads only the size limit; no Redis or IMAP call is made.
    return MailboxSync(
        None,  # type: ignore[arg-type]
        keys=Keys("t:"),
        checkpoints=None,  # type: ignore[arg-type]
        max_email_bytes=max_email_bytes,
        mark_seen=True,
    )


def _uids(batches: list[list[_Message]]) -> list[list[int]]:
    return [[m.uid for m in batch] for batch in batches]


def test_batches_keep_uid_order_within_their_limits() -> None:
    sync = _sync(max_email_bytes=10 * 2**20)
    small = [_Message(uid, 1000, None) for uid in range(1, BATCH_MESSAGES * 2 + 2)]
    batches = _uids(sync._batches(small))
    assert [len(b) for b in batches] == [BATCH_MESSAGES, BATCH_MESSAGES, 1]
    assert [uid for batch in batches for uid in batch] == [m.uid for m in small]

    half = BATCH_BYTES // 2
    sized = [_Message(1, half, None), _Message(2, half, None), _Message(3, 1, None)]
    assert _uids(sync._batches(sized)) == [[1, 2], [3]]  # 2 * half + 1 > BATCH_BYTES
    # One message above the byte budget (but within max_email_bytes) goes alone.
    huge = [_Message(1, 10, None), _Message(2, BATCH_BYTES * 2, None), _Message(3, 10, None)]
    assert _uids(sync._batches(huge)) == [[1], [2], [3]]


def test_a_message_to_truncate_is_a_batch_of_its_own() -> None:
    sync = _sync(max_email_bytes=4096)
    todo = [_Message(uid, 5000 if uid == 3 else 100, None) for uid in range(1, 6)]
    assert _uids(sync._batches(todo)) == [[1, 2], [3], [4, 5]]
    assert _uids(sync._batches([])) == []


async def test_a_burst_is_published_once_each_in_uid_order_and_flagged(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    count = BATCH_MESSAGES + 6
    oversized_at = 7
    messages = [
        make_email(f"burst {i}", "y" * (6000 if i == oversized_at else 10)) for i in range(count)
    ]
    uids = [dovecot.append(m) for m in messages]  # unread before the first start
    published_before = metric("render_signal_imap_emails_published_total", {"kind": "full"})
    settings = settings_for(MAX_EMAIL_BYTES="4096")
    await start_watcher(settings)

    async def all_published() -> list:
        events = await raw_events(redis, key_prefix)
        return events if len(events) >= count else []

    events = await eventually(all_published, 30, f"{count} entries on mail.raw")
    assert len(events) == count  # each once
    assert [e.uid for e in events] == uids  # stream order is UID order
    assert [message_id_of(e) for e in events] == [mid(m) for m in messages]
    assert [e.truncated for e in events] == [i == oversized_at for i in range(count)]
    for i, (event, message) in enumerate(zip(events, messages, strict=True)):
        if i != oversized_at:
            assert event.raw.rstrip() == message.rstrip()
    full = metric("render_signal_imap_emails_published_total", {"kind": "full"})
    assert full - published_before == count - 1

    async def settled() -> bool:
        box = await CheckpointStore(redis, Keys(key_prefix)).load("INBOX")
        return box is not None and box.last_uid == uids[-1]

    await eventually(settled, 10, "checkpoint at the last UID")

    async def all_seen() -> bool:
        return all(b"\\Seen" in dovecot.flags(uid) for uid in uids)

    await eventually(all_seen, 10, "\\Seen on every message")
