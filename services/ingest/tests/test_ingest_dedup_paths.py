"""One email, one ``mail.received``, whatever the path (issue 14, item 2), on a real Redis.

IMAP and raw copies carry the Message-ID; a push from the original's Apps Script
does not, and its date (Gmail's timestamp) differs from the Date header by
seconds to minutes. Each pair below goes through the running parser component
in both orders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from parser_testkit import Parser, counter, eml, raw_event
from redis.asyncio import Redis
from render_signal.common.events import MailRaw
from render_signal.common.identity import fingerprint
from render_signal.common.keys import Keys
from render_signal.ingest.dedup import SeenEmails

SUBJECT = "Média Solution - Missions Recadrage - Lot 7"
SENDER = "Agence <Agence@Client.fr>"
DATE_HEADER = "Mon, 02 Jun 2025 09:12:00 +0200"  # eml()'s Date: 07:12:00 UTC


def gmail(date: str, message_id: str = "", subject: str = SUBJECT) -> MailRaw:
    fields = {"subject": subject, "sender": SENDER, "date": date, "body": "<p>à faire pour 14h</p>"}
    if message_id:
        fields["message_id"] = message_id
    return MailRaw(
        event_id=uuid.uuid4().hex, source="gmail_push", received_at=time.time(), gmail=fields
    )


def imap(message_id: str, subject: str = SUBJECT) -> MailRaw:
    return raw_event(eml(subject=subject, sender=SENDER, message_id=message_id))


async def published(parser: Parser, subject: str = SUBJECT) -> list[str]:
    await parser.marker()  # everything sent before is handled
    return [m.source for m in await parser.received() if m.subject == subject]


@pytest.mark.parametrize("imap_first", [True, False], ids=["imap-first", "gmail-first"])
async def test_imap_and_old_script_push_are_one_email(start_parser: Any, imap_first: bool) -> None:
    parser: Parser = await start_parser()
    before = counter("skipped", "duplicate")
    copies = [imap("lot7.a1@client.fr"), gmail("2025-06-02T07:12:41.000Z")]
    for copy in copies if imap_first else reversed(copies):
        await parser.send(copy)
    assert await published(parser) == (["imap"] if imap_first else ["gmail_push"])
    assert counter("skipped", "duplicate") == before + 1


@pytest.mark.parametrize("imap_first", [True, False], ids=["imap-first", "gmail-first"])
async def test_imap_and_new_script_push_share_the_message_id(
    start_parser: Any, imap_first: bool
) -> None:
    parser: Parser = await start_parser()
    mid = f"<{uuid.uuid4().hex}@client.fr>"
    copies = [imap(mid.strip("<>")), gmail("2025-06-02T07:20:00.000Z", message_id=mid)]
    for copy in copies if imap_first else reversed(copies):
        await parser.send(copy)
    assert len(await published(parser)) == 1


async def test_distinct_resends_and_far_dates_stay_distinct(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    # Two pushes of the old script (no Message-ID) five minutes apart: two emails,
    # as the original's ids (md5 with the exact date) said.
    await parser.send(gmail("2025-06-02T07:12:00.000Z"))
    await parser.send(gmail("2025-06-02T07:17:00.000Z"))
    # An IMAP copy two hours later (outside the tolerance) is a third email.
    other = raw_event(
        eml(subject=SUBJECT, sender=SENDER, message_id="later@client.fr").replace(
            b"09:12:00 +0200", b"11:12:00 +0200"
        )
    )
    await parser.send(other)
    assert sorted(await published(parser)) == ["gmail_push", "gmail_push", "imap"]


async def test_one_imap_copy_absorbs_one_push(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    subject = f"Lot {uuid.uuid4().hex[:6]}"
    await parser.send(imap("one@client.fr", subject=subject))
    await parser.send(gmail("2025-06-02T07:12:30.000Z", subject=subject))  # its Gmail copy
    await parser.send(gmail("2025-06-02T07:14:00.000Z", subject=subject))  # another email
    assert sorted(await published(parser, subject)) == ["gmail_push", "imap"]


async def test_claims_are_atomic_and_survive_redelivery(redis: Redis, key_prefix: str) -> None:
    seen = SeenEmails(redis, Keys(key_prefix), ttl_s=3600, tolerance_s=900)
    fp = fingerprint("agence@client.fr", SUBJECT)
    now = time.time()

    async def claim(i: int, has_message_id: bool) -> Any:
        return await seen.claim(
            email_id=f"id-{i}",
            event_id=f"ev-{i}",
            fingerprint=fp,
            dated=now + i,
            has_message_id=has_message_id,
        )

    # One copy with a Message-ID against twenty concurrent pushes without one.
    results = await asyncio.gather(claim(0, True), *(claim(i, False) for i in range(1, 21)))
    matched = [r for r in results if r.verdict == "match"]
    assert len(matched) == 1  # the IMAP copy absorbed exactly one push
    # A redelivered entry (same event id) gets its first verdict again: a claim claims
    # again (it is published, never lost), a duplicate stays one. (The order in which
    # the concurrent claims ran is Redis's; both outcomes occur.)
    for i, first in enumerate(results):
        again = await claim(i, i == 0)
        assert again.verdict == ("claimed" if first.verdict == "claimed" else "seen"), i
        assert await seen.seen(f"id-{i}", f"ev-{i}") is (first.verdict != "claimed")
        assert await seen.seen(f"id-{i}", "someone-else") is True
