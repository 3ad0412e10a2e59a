"""The parser component's test harness: settings, emails, a running parser on real Redis.

Used by the parser tests (``start_parser`` fixture in conftest): send ``mail.raw``
entries, read back ``mail.received``, count outcomes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore
from render_signal.common.events import MailRaw, MailReceived, decode_entry
from render_signal.common.keys import STREAM_MAIL_RAW, STREAM_MAIL_RECEIVED
from render_signal.common.settings import EnvReader
from render_signal.common.streams import publish
from render_signal.ingest.identity import message_id_email_id
from render_signal.ingest.settings import IngestSettings, read_settings

__all__ = ["FIXED_NOW", "SMASH", "Parser", "build_settings", "counter", "eml", "raw_event"]

FIXED_NOW = dt.datetime(2025, 6, 2, 10, 15, tzinfo=dt.UTC)
SMASH = "https://fromsmash.com/Lot-12"


def build_settings(redis_url: str, key_prefix: str, **extra: str) -> IngestSettings:
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "RENDER_SIGNAL_INSTANCE": "parser-test",
        **extra,
    }
    reader = EnvReader(env, {})
    settings = read_settings(reader)
    reader.check()
    return settings


def eml(
    subject: str = "Média Solution - Missions Recadrage - Lot 3",
    sender: str = "Agence <Agence@Client.fr>",
    body: str = f"à faire pour 14h30\n{SMASH}\n",
    message_id: str | None = None,
) -> bytes:
    mid = f"Message-ID: <{message_id}>\r\n" if message_id else ""
    return (
        f"From: {sender}\r\nSubject: {subject}\r\n{mid}"
        "Date: Mon, 02 Jun 2025 09:12:00 +0200\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}"
    ).encode()


def raw_event(raw: bytes, source: Any = "imap", **kw: Any) -> MailRaw:
    return MailRaw(event_id=uuid.uuid4().hex, source=source, received_at=time.time(), raw=raw, **kw)


class Parser:
    def __init__(self, redis: Redis, settings: IngestSettings) -> None:
        self.redis = redis
        self.settings = settings
        prefix = settings.common.key_prefix
        self.raw_key = f"{prefix}{STREAM_MAIL_RAW}"
        self.out_key = f"{prefix}{STREAM_MAIL_RECEIVED}"
        self.store = ConfigStore(redis, settings.common.keys)

    async def send(self, event: MailRaw) -> None:
        await publish(self.redis, self.raw_key, event)

    async def received(self) -> list[MailReceived]:
        entries = await self.redis.xrange(self.out_key)
        return [decode_entry(fields, MailReceived) for _id, fields in entries]

    async def wait_for(
        self, check: Callable[[list[MailReceived]], bool], timeout: float = 15.0
    ) -> list[MailReceived]:
        deadline = time.monotonic() + timeout
        while True:
            got = await self.received()
            if check(got) or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.05)

    async def marker(self) -> None:
        """Send an allowed email and wait for it: everything sent before is handled."""
        mid = f"marker-{uuid.uuid4().hex}@test"
        await self.send(raw_event(eml(subject="marker", message_id=mid)))
        target = message_id_email_id(mid)
        got = await self.wait_for(lambda r: any(m.email_id == target for m in r))
        assert any(m.email_id == target for m in got), "parser did not handle the marker"


def counter(outcome: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "render_signal_ingest_emails_total", {"outcome": outcome, "reason": reason}
    )
    return value or 0.0
