"""Builds a notify service in-process against the test Redis, with a manual clock."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis
from render_signal.common.configdocs import BY_NAME, apply_changes
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.deadletters import list_webhook_dead_letters, replay_webhook_dead_letter
from render_signal.common.events import DeliveryLink, MailOffloaded
from render_signal.common.logs import mask_url
from render_signal.common.settings import EnvReader
from render_signal.common.streams import Delivery
from render_signal.common.webhooklog import read_attempts
from render_signal.devstack.clock import ManualClock
from render_signal.notify.delivery import WebhookSender
from render_signal.notify.scheduler import Scheduler
from render_signal.notify.service import NotifyService
from render_signal.notify.settings import NotifySettings, read_settings

PARIS = ZoneInfo("Europe/Paris")
_counter = itertools.count(1)


def paris(*args: int) -> float:
    return dt.datetime(*args, tzinfo=PARIS).timestamp()  # type: ignore[misc]


def make_settings(redis_url: str, key_prefix: str, **env: str) -> NotifySettings:
    base = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "POLLING_TIMEZONE": "Europe/Paris",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS": "true",
    }
    base.update(env)
    reader = EnvReader(base, {})
    settings = read_settings(reader)
    reader.check()
    return settings


def make_event(**overrides: Any) -> MailOffloaded:
    n = next(_counter)
    fields: dict[str, Any] = {
        "event_id": f"ev-{n}",
        "email_id": f"{n:032x}",
        "source": "gmail_push",
        "subject": "Média Solution - Missions Recadrage - Lot 42",
        "sender_address": "Agence <agence@media-solution.fr>",
        "sender_email": "agence@media-solution.fr",
        "received_date": "Mon, 30 Mar 2026 09:00:00 +0200",
        "body_text": "Bonjour, à faire pour 11h30. https://www.dropbox.com/scl/fo/abc " * 3,
        "body_html": "<p>Bonjour</p>",
        "links": (
            DeliveryLink(
                provider="dropbox",
                raw_url="https://www.dropbox.com/scl/fo/abc",
                direct_url="https://www.dropbox.com/scl/fo/abc?dl=1",
                r2_url="https://media.example.net/abc.zip",
                original_filename="abc.zip",
            ),
        ),
        "detector": "recadrage",
        "delivery_time": "11h30",
        "received_at": 1.0,
    }
    fields.update(overrides)
    return MailOffloaded(**fields)


class Harness:
    def __init__(self, redis: Redis, settings: NotifySettings, clock: ManualClock) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.prefix = settings.common.key_prefix
        self.keys = settings.common.keys
        self.store = ConfigStore(redis, self.keys)
        self.watcher = ConfigWatcher(self.store, max_staleness_s=0.0)
        self.sender = WebhookSender(
            settings.common.outbound_policy(), signing_secret=settings.signing_secret
        )
        self.service = NotifyService(settings, redis, self.watcher, clock, self.sender)
        self.scheduler = Scheduler(self.service, 0.01, settings.concurrency)

    async def emit(self, event: MailOffloaded, deliveries: int = 1) -> None:
        await self.service.handle_event(event, Delivery("1-0", deliveries, "mail.offloaded"))

    async def tick(self) -> int:
        return await self.scheduler.tick()

    async def configure(self, name: str, data: dict[str, Any]) -> None:
        """Write a config document as the gateway would (validated by its struct)."""
        doc_type = BY_NAME[name]
        await self.store.write(apply_changes(doc_type, doc_type(), data))

    async def store_unvalidated(self, name: str, data: dict[str, Any]) -> None:
        """Put a document in Redis as an older or buggy writer could have (no validation)."""
        await self.redis.hset(
            self.keys.config(name), mapping={"data": json.dumps(data), "version": "1"}
        )

    async def logs(self, days: int = 30) -> list[dict[str, Any]]:
        """The webhook log, newest first, as the API shows it."""
        entries = await read_attempts(self.redis, self.keys, days, now=self.clock.now(), limit=500)
        return [msgspec.to_builtins(e) for e in entries]

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Webhook dead letters, newest first, with their entry ``id`` and masked target."""
        letters = await list_webhook_dead_letters(self.redis, self.keys)
        return [
            {
                **{f: getattr(letter, f) for f in letter.__struct_fields__ if f != "job"},
                "id": entry_id,
                "target": mask_url(letter.target),
            }
            for entry_id, letter in letters
        ]

    async def replay(self, entry_id: str) -> bool:
        return (
            await replay_webhook_dead_letter(self.redis, self.keys, entry_id, now=self.clock.now())
            is not None
        )

    async def aclose(self) -> None:
        await self.sender.aclose()


# A test fixture that builds harnesses (conftest `make`).
Factory = Callable[..., Harness]
