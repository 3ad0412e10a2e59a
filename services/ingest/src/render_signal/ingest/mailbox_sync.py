"""One synchronisation pass: new messages of the selected mailbox -> ``mail.raw``.

Per batch of messages, in UID order (the no-loss order of docs 1.5):

1. ``RFC822.SIZE`` + ``INTERNALDATE``; ``BODY.PEEK[]`` (never sets \\Seen), or for a
   message above ``max_email_bytes`` only ``BODY.PEEK[HEADER]`` plus the first
   bytes of ``BODY.PEEK[TEXT]`` (published with ``truncated=True``);
2. XADD to ``mail.raw`` (returned = durable);
3. advance the checkpoint to the batch's last UID;
4. ``\\Seen`` when ``mark_seen``.

A batch is up to :data:`BATCH_MESSAGES` consecutive messages of at most
:data:`BATCH_BYTES` together, fetched by one FETCH, published in one round trip
and flagged by one STORE: a burst (mail that piled up during an outage, or
several messages announced by one IDLE wake-up) costs one exchange per batch
instead of four per message (issue 16). A truncated message is a batch of its
own. A failure anywhere in a batch leaves the checkpoint before it: the next
pass publishes the batch again, and the same ``event_id`` lets downstream
absorb what was published twice.

Which UIDs are new:

* checkpoint in the same UIDVALIDITY: ``UID last_uid+1:*`` (not just UNSEEN, so a
  message someone read in a mail client is still relayed);
* no checkpoint (first start): ``IMAP_INITIAL_SYNC`` = ``unseen`` (default: the
  unread messages, so an existing mailbox is not replayed), ``all``, or ``new``
  (nothing that already exists);
* UIDVALIDITY changed: the old UIDs mean nothing. Re-baseline: publish only messages
  whose INTERNALDATE is newer than the last processed one (UNSEEN when that time is
  unknown), log a warning and count it. Message-ID dedup downstream absorbs a
  message published under both UID spaces.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import NamedTuple

from prometheus_client import Counter
from redis.asyncio import Redis
from render_signal.common.events import MailRaw
from render_signal.common.keys import Keys
from render_signal.common.streams import publish_all
from render_signal.ingest.checkpoint import Checkpoint, CheckpointStore
from render_signal.ingest.faults import FaultPoints
from render_signal.ingest.imap_client import ImapAdapter, SelectedMailbox

__all__ = ["BATCH_BYTES", "BATCH_MESSAGES", "MailboxSync"]

logger = logging.getLogger(__name__)

UIDVALIDITY_CHANGES = Counter(
    "render_signal_imap_uidvalidity_changes_total",
    "UIDVALIDITY changes seen (the mailbox UID space was reset)",
)
FETCHED = Counter(
    "render_signal_imap_emails_published_total",
    "Raw emails published to mail.raw by the IMAP watcher",
    ["kind"],
)


#: Messages and bytes fetched, published and flagged together (module docstring).
BATCH_MESSAGES = 25
BATCH_BYTES = 2 * 2**20


def _stamp(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _part(row: dict[bytes, object], prefix: bytes) -> bytes:
    """A FETCH body item by prefix (servers answer ``BODY[TEXT]<0>`` for a partial)."""
    for key, value in row.items():
        if key.startswith(prefix) and isinstance(value, bytes):
            return value
    return b""


class _Message(NamedTuple):
    uid: int
    size: int
    internal: float | None


class MailboxSync:
    """Fetches, publishes and checkpoints new messages of one mailbox."""

    def __init__(
        self,
        redis: Redis,
        *,
        keys: Keys,
        checkpoints: CheckpointStore,
        max_email_bytes: int,
        mark_seen: bool,
        initial_sync: str = "unseen",
        faults: FaultPoints | None = None,
    ) -> None:
        self.redis = redis
        self.stream_key = keys.mail_raw
        self.checkpoints = checkpoints
        self.max_email_bytes = max_email_bytes
        self.mark_seen = mark_seen
        self.initial_sync = initial_sync
        self.faults = faults or FaultPoints()

    async def run(self, imap: ImapAdapter, box: SelectedMailbox, seen_at: float) -> int:
        """One pass; returns how many messages were published.

        ``seen_at`` is when the watcher learnt of new mail (EXISTS or poll).
        """
        checkpoint = await self.checkpoints.load(box.name)
        uids, newer_than, floor = await self._candidates(imap, box, checkpoint)
        if not uids:
            if checkpoint is None or checkpoint.uidvalidity != box.uidvalidity:
                # Baseline the (new) UID space so the next pass only asks for UID floor+1:*.
                await self.checkpoints.advance(box.name, box.uidvalidity, floor)
            return 0
        meta = await imap.sizes(uids)
        todo: list[_Message] = []
        for uid in uids:
            if uid not in meta:  # expunged since the search
                continue
            size, internal = meta[uid]
            stamp = _stamp(internal)
            if newer_than is not None and (stamp is None or stamp <= newer_than):
                continue
            todo.append(_Message(uid, size, stamp))
        published = 0
        for batch in self._batches(todo):
            published += await self._relay(imap, box, batch, seen_at)
        # Everything up to the highest candidate and the pre-existing floor is settled.
        await self.checkpoints.advance(box.name, box.uidvalidity, max(floor, uids[-1]))
        return published

    async def _candidates(
        self, imap: ImapAdapter, box: SelectedMailbox, checkpoint: Checkpoint | None
    ) -> tuple[list[int], float | None, int]:
        """(UIDs to consider, INTERNALDATE filter, UID floor once they are done)."""
        floor = max(box.uidnext - 1, 0)
        if checkpoint is not None and checkpoint.uidvalidity == box.uidvalidity:
            found = await imap.search(["UID", f"{checkpoint.last_uid + 1}:*"])
            # "n:*" also matches the highest UID when n is beyond it: filter.
            return [u for u in found if u > checkpoint.last_uid], None, checkpoint.last_uid
        if checkpoint is not None:
            UIDVALIDITY_CHANGES.inc()
            logger.warning(
                "IMAP: UIDVALIDITY of %s changed %d -> %d; re-baselining (only mail newer"
                " than the last processed one is published)",
                box.name,
                checkpoint.uidvalidity,
                box.uidvalidity,
            )
            if checkpoint.last_internaldate is not None:
                since = dt.datetime.fromtimestamp(checkpoint.last_internaldate, dt.UTC).date()
                found = await imap.search(["SINCE", since - dt.timedelta(days=1)])
                return found, checkpoint.last_internaldate, floor
            return await imap.search("UNSEEN"), None, floor
        logger.info("IMAP: no checkpoint for %s; initial sync mode %s", box.name, self.initial_sync)
        if self.initial_sync == "all":
            return await imap.search("ALL"), None, floor
        if self.initial_sync == "new":
            return [], None, floor
        return await imap.search("UNSEEN"), None, floor

    def _batches(self, todo: list[_Message]) -> list[list[_Message]]:
        """Consecutive runs of at most BATCH_MESSAGES / BATCH_BYTES; a truncated
        message (above ``max_email_bytes``) alone."""
        batches: list[list[_Message]] = []
        batch: list[_Message] = []
        held = 0
        for message in todo:
            alone = message.size > self.max_email_bytes
            if batch and (
                alone or len(batch) >= BATCH_MESSAGES or held + message.size > BATCH_BYTES
            ):
                batches.append(batch)
                batch, held = [], 0
            batch.append(message)
            held += message.size
            if alone:
                batches.append(batch)
                batch, held = [], 0
        if batch:
            batches.append(batch)
        return batches

    async def _relay(
        self, imap: ImapAdapter, box: SelectedMailbox, batch: list[_Message], seen_at: float
    ) -> int:
        """Fetch, publish, checkpoint and flag one batch; returns how many were published."""
        truncated = batch[0].size > self.max_email_bytes  # then the batch is that one
        if truncated:
            items = ["BODY.PEEK[HEADER]", f"BODY.PEEK[TEXT]<0.{self.max_email_bytes}>"]
        else:
            items = ["BODY.PEEK[]"]
        rows = await imap.fetch([m.uid for m in batch], items)
        events: list[tuple[_Message, MailRaw]] = []
        for message in batch:
            row = rows.get(message.uid)
            if row is None:  # expunged between SIZE and BODY
                continue
            if truncated:
                raw = _part(row, b"BODY[HEADER]") + _part(row, b"BODY[TEXT]")
            else:
                raw = _part(row, b"BODY[]")
            event = MailRaw(
                event_id=f"imap:{box.name}:{box.uidvalidity}:{message.uid}",
                source="imap",
                received_at=time.time(),
                raw=raw,
                truncated=truncated,
                original_size=message.size,
                mailbox=box.name,
                uidvalidity=box.uidvalidity,
                uid=message.uid,
                imap_arrived_at=seen_at,
                trace={"imap_seen": seen_at, "published": time.time()},
            )
            events.append((message, event))
        if not events:
            return 0
        # Raises if any XADD failed: no checkpoint then.
        await publish_all(self.redis, self.stream_key, [event for _, event in events])
        self.faults.hit("ingest.after_publish")
        FETCHED.labels("truncated" if truncated else "full").inc(len(events))
        last = events[-1][0]
        await self.checkpoints.advance(box.name, box.uidvalidity, last.uid, last.internal)
        if self.mark_seen:
            await imap.mark_seen([message.uid for message, _ in events])
        for message, event in events:
            logger.info(
                "IMAP: published %s (%d bytes%s) in %.3fs",
                event.event_id,
                message.size,
                ", truncated" if truncated else "",
                time.time() - seen_at,
            )
        return len(events)
