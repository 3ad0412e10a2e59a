"""Builds a notify service in-process against the test Redis, with a manual clock."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.events import DeliveryLink, MailOffloaded
from render_signal.common.settings import EnvReader
from render_signal.common.streams import Delivery
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
        self.store = ConfigStore(redis, self.prefix)
        self.watcher = ConfigWatcher(self.store, max_staleness_s=0.0)
        self.sender = WebhookSender(
            signing_secret=settings.signing_secret, makecom_api_key=settings.makecom_api_key
        )
        self.service = NotifyService(settings, redis, self.watcher, clock, self.sender)
        self.scheduler = Scheduler(self.service, 0.01, settings.concurrency)

    async def emit(self, event: MailOffloaded, deliveries: int = 1) -> None:
        await self.service.handle_event(event, Delivery("1-0", deliveries, "mail.offloaded"))

    async def tick(self) -> int:
        return await self.scheduler.tick()

    async def configure(self, name: str, data: dict[str, Any]) -> None:
        await self.store.put(name, data)

    async def aclose(self) -> None:
        await self.sender.aclose()


# A test fixture that builds harnesses (conftest `make`).
Factory = Callable[..., Harness]
