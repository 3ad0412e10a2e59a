"""The parser component against a real Redis: mail.raw in, mail.received / dlq out."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from parser_testkit import SMASH, Parser, counter, eml, raw_event
from render_signal.common.configdocs import PollingConfig, ProcessingPrefs, RuntimeFlags
from render_signal.common.events import MailRaw, MailReceived
from render_signal.common.keys import Keys
from render_signal.devstack.polling import eventually
from render_signal.ingest.identity import legacy_email_id, message_id_email_id


async def test_ingest_parser_publishes_received_with_links(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    arrived = time.time() - 1.5
    await parser.send(
        raw_event(
            eml(message_id="Lot3@Client.fr"),
            truncated=True,
            imap_arrived_at=arrived,
            trace={"imap": arrived},
        )
    )
    got = await parser.wait_for(lambda r: len(r) >= 1)
    assert len(got) == 1
    mail = got[0]
    assert mail.email_id == message_id_email_id("<lot3@client.fr>")
    assert [(link.provider, link.raw_url) for link in mail.links] == [("fromsmash", SMASH)]
    assert mail.detector == "recadrage"
    assert mail.delivery_time == "14h30"
    assert mail.sender_email == "agence@client.fr"
    assert mail.subject == "Média Solution - Missions Recadrage - Lot 3"
    assert mail.received_date == "2025-06-02T07:12:00Z"
    assert mail.truncated is True
    assert mail.trace["imap"] == arrived and mail.trace["parsed"] >= arrived
    seen = await parser.redis.ttl(f"{parser.settings.common.key_prefix}ingest:seen:{mail.email_id}")
    assert 0 < seen <= parser.settings.dedup_ttl_s


async def test_ingest_parser_duplicate_message_id_published_once(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    before = counter("skipped", "duplicate")
    await parser.send(raw_event(eml(message_id="dup-1@client.fr")))
    await parser.send(raw_event(eml(message_id=" DUP-1@Client.FR "), source="http_raw"))
    await parser.marker()
    got = await parser.received()
    target = message_id_email_id("dup-1@client.fr")
    assert [m.email_id for m in got].count(target) == 1
    assert counter("skipped", "duplicate") == before + 1


async def test_a_published_email_seen_again_is_a_duplicate_before_any_filter(
    start_parser: Any,
) -> None:
    """The claim is the only dedup round trip for an email no filter skips (issue 16);
    a copy a filter *would* skip is still reported as the duplicate it is."""
    parser: Parser = await start_parser()
    dup, sender = counter("skipped", "duplicate"), counter("skipped", "sender_not_allowed")
    await parser.send(raw_event(eml(message_id="seen-1@client.fr")))
    await parser.marker()
    await parser.store.apply(PollingConfig, {"sender_of_interest_for_polling": ["x@else.fr"]})

    probes: list[str] = []

    async def filtered() -> bool:  # the live config reached the parser
        probes.append(f"probe-{len(probes)}@client.fr")
        await parser.send(raw_event(eml(message_id=probes[-1])))
        return counter("skipped", "sender_not_allowed") > sender

    await eventually(filtered, 10, "the new allowlist applied")

    async def probes_settled() -> bool:  # each probe either published or skipped
        ids = {message_id_email_id(p) for p in probes}
        published = sum(1 for m in await parser.received() if m.email_id in ids)
        return published + counter("skipped", "sender_not_allowed") - sender == len(probes)

    await eventually(probes_settled, 10, "every probe handled")
    sender = counter("skipped", "sender_not_allowed")
    await parser.send(raw_event(eml(message_id="seen-1@client.fr"), source="http_raw"))

    async def reported() -> bool:
        return counter("skipped", "duplicate") > dup

    await eventually(reported, 10, "the copy reported")
    assert counter("skipped", "duplicate") == dup + 1
    assert counter("skipped", "sender_not_allowed") == sender
    target = message_id_email_id("seen-1@client.fr")
    assert [m.email_id for m in await parser.received()].count(target) == 1


async def test_ingest_parser_dedup_flag_disables_dedup(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    await parser.store.apply(RuntimeFlags, {"disable_email_id_dedup": True})
    await parser.send(raw_event(eml(message_id="again@client.fr")))
    await parser.send(raw_event(eml(message_id="again@client.fr")))
    target = message_id_email_id("again@client.fr")
    got = await parser.wait_for(lambda r: [m.email_id for m in r].count(target) >= 2)
    assert [m.email_id for m in got].count(target) == 2


async def test_ingest_parser_allowlist_change_applies_without_restart(start_parser: Any) -> None:
    parser: Parser = await start_parser(SENDER_OF_INTEREST_FOR_POLLING="agence@client.fr")
    before = counter("skipped", "sender_not_allowed")
    await parser.send(raw_event(eml(sender="Other <other@else.fr>", message_id="o-1@else.fr")))
    await parser.marker()  # from agence@client.fr: allowed by the env list
    assert not any(m.sender_email == "other@else.fr" for m in await parser.received())
    assert counter("skipped", "sender_not_allowed") == before + 1

    # The stored list overrides the env list, read live by the running parser.
    await parser.store.apply(PollingConfig, {"sender_of_interest_for_polling": ["OTHER@else.fr"]})
    n = itertools.count(1)

    async def other_sender_accepted() -> bool:
        await parser.send(
            raw_event(eml(sender="other@else.fr", message_id=f"o-{next(n)}-x@else.fr"))
        )
        got = await parser.wait_for(lambda r: any(m.sender_email == "other@else.fr" for m in r), 1)
        return any(m.sender_email == "other@else.fr" for m in got)

    # Sent again until the running parser has read the stored list.
    await eventually(other_sender_accepted, 15, "the stored sender list to apply")
    # ... and the env-listed sender is now refused.
    mid = "agence-late@client.fr"
    await parser.send(raw_event(eml(message_id=mid)))
    await parser.send(raw_event(eml(sender="other@else.fr", message_id="o-final@else.fr")))
    final = message_id_email_id("o-final@else.fr")
    got = await parser.wait_for(lambda r: any(m.email_id == final for m in r))
    assert any(m.email_id == final for m in got)
    assert not any(m.email_id == message_id_email_id(mid) for m in got)


async def test_ingest_parser_malformed_entries_dead_lettered(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    await parser.send(raw_event(b""))
    await parser.redis.xadd(parser.raw_key, {"type": b"mail.raw/1", "data": b"{not json"})
    await parser.send(MailRaw(event_id="g-bad", source="gmail_push", received_at=time.time()))
    dlq = Keys.dlq(parser.raw_key)

    async def three_dead_letters() -> list[Any]:
        entries: list[Any] = await parser.redis.xrange(dlq)
        return entries if len(entries) >= 3 else []

    entries = await eventually(three_dead_letters, 15, "three dead letters")
    errors = sorted(fields[b"error"].decode() for _id, fields in entries)
    assert len(errors) == 3
    assert errors[0].startswith("malformed: cannot decode event")
    assert "unreadable email: empty raw message" in errors[1]
    assert "unreadable email: gmail_push entry without gmail fields" in errors[2]
    await parser.marker()  # the consumer survived


async def test_ingest_parser_gmail_push_shape(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    fields = {
        "subject": "Disponibilité",
        "sender": "Agence <Agence@Client.fr>",
        "date": "2025-06-02T09:12:00Z",
        "body": "<p>Une journée aux tarifs habituels ? "
        "<a href='https://www.dropbox.com/request/AbCd'>déposer</a> URGENT</p>",
        "snippet": "x",
    }
    await parser.send(
        MailRaw(event_id="g-1", source="gmail_push", received_at=time.time(), gmail=fields)
    )
    got = await parser.wait_for(lambda r: len(r) >= 1)
    assert len(got) == 1
    mail = got[0]
    assert mail.email_id == legacy_email_id(
        "Disponibilité", "agence@client.fr", "2025-06-02T09:12:00Z"
    )
    assert mail.source == "gmail_push"
    assert mail.detector == "desabonnement_journee_tarifs" and mail.is_urgent
    assert [link.raw_url for link in mail.links] == ["https://www.dropbox.com/request/AbCd"]
    assert mail.received_date == "2025-06-02T09:12:00Z"

    # Runtime flag off: Gmail pushes are skipped with their reason.
    before = counter("skipped", "gmail_ingress_disabled")
    await parser.store.apply(RuntimeFlags, {"gmail_ingress_enabled": False})

    async def gmail_push_skipped() -> bool:
        other = {**fields, "date": f"2025-06-03T{time.time()}"}
        await parser.send(
            MailRaw(event_id=uuid.uuid4().hex, source="gmail_push", received_at=0.0, gmail=other)
        )
        await parser.marker()
        return counter("skipped", "gmail_ingress_disabled") > before

    # Sent again until the running parser has read the flag.
    await eventually(gmail_push_skipped, 15, "Gmail pushes skipped by the flag")


async def test_ingest_parser_reply_prefix_and_detector_prefs(start_parser: Any) -> None:
    parser: Parser = await start_parser()
    before = counter("skipped", "reply_prefix")
    await parser.send(raw_event(eml(subject="RE: TR : Lot 3", message_id="re-1@client.fr")))
    await parser.store.apply(ProcessingPrefs, {"detectors_enabled": []})
    n = itertools.count(1)

    async def undetected() -> list[MailReceived]:
        await parser.send(raw_event(eml(message_id=f"nodet-{next(n)}@client.fr")))
        got = await parser.wait_for(lambda r: any(m.detector is None for m in r), 1)
        return [m for m in got if m.detector is None and m.subject != "marker"]

    # Sent again until the running parser has read the preferences.
    plain = await eventually(undetected, 15, "an email parsed without detectors")
    assert plain[0].links  # links still extracted, no detector ran
    assert counter("skipped", "reply_prefix") == before + 1
    assert not any(m.subject.startswith("RE:") for m in await parser.received())


async def test_exclude_keywords_skip_emails_live(start_parser: Any) -> None:
    """processing_prefs.exclude_keywords*: applied by the running parser, no restart."""
    parser: Parser = await start_parser()
    await parser.store.apply(
        ProcessingPrefs,
        {
            "exclude_keywords": ["Annulé"],
            "exclude_keywords_recadrage": ["test interne"],
            "exclude_keywords_autorepondeur": ["recadrage"],  # DESABO only: no effect here
        },
    )
    before = counter("skipped", "excluded_keyword")
    await parser.send(raw_event(eml(subject="Lot 3 ANNULÉ", message_id="ex-1@client.fr")))
    await parser.send(raw_event(eml(body=f"test interne, à faire pour 14h30\n{SMASH}\n")))
    kept = "ex-3@client.fr"
    await parser.send(raw_event(eml(message_id=kept)))
    await parser.marker()
    got = await parser.received()
    assert [m.email_id for m in got if m.subject != "marker"] == [message_id_email_id(kept)]
    assert got[0].detector == "recadrage"  # the DESABO-only keyword did not apply to it
    assert counter("skipped", "excluded_keyword") == before + 2
