"""Config store (issue 2, acceptance 6): a write in one process reaches another, typed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from render_signal.common.configdocs import (
    UNSET,
    PollingConfig,
    RoutingRules,
    RuntimeFlags,
    WebhookConfig,
    apply_changes,
)
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.errors import ConfigConflict, ConfigInvalid
from render_signal.common.keys import Keys
from render_signal.devstack.polling import eventually


async def test_document_written_by_another_process_is_seen_without_restart(
    redis: Redis, redis_url: str, key_prefix: str, launch: Any
) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    # A long staleness bound: only the change notification can explain a fast reload.
    watcher = ConfigWatcher(store, max_staleness_s=3600)
    changed: list[str | None] = []
    watcher.subscribe(changed.append)
    stop = asyncio.Event()
    listener = asyncio.create_task(watcher.listen(stop))
    first = await watcher.get(WebhookConfig)
    assert first.version == 0 and first.doc == WebhookConfig()

    async def subscribed() -> bool:
        channels: Any = await redis.pubsub_numsub(store.keys.config_changed)
        return bool(channels[0][1] >= 1)

    await eventually(subscribed, what="the watcher's subscription")
    proc = launch("config", REDIS_URL=redis_url, PREFIX=key_prefix, VALUE="09h30-18h00")
    assert await asyncio.to_thread(proc.wait, 20) == 0

    async def reloaded() -> bool:
        return (await watcher.get(WebhookConfig)).version == 1

    await eventually(reloaded, what="the reader to see the new version")
    current = await watcher.get(WebhookConfig)
    assert (current.doc.webhook_time_start, current.doc.webhook_time_end) == ("09:30", "18:00")
    assert current.updated_at is not None and current.updated_at.endswith("Z")
    assert WebhookConfig.NAME in changed, "the change callback fired for the document"
    stop.set()
    await listener


async def test_stale_reader_catches_up_without_notifications(redis: Redis, key_prefix: str) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    watcher = ConfigWatcher(store, max_staleness_s=0.0)  # no listener running
    assert (await watcher.get(RoutingRules)).version == 0
    await store.write(RoutingRules(locked=False))
    fresh = await watcher.get(RoutingRules)
    assert fresh.version == 1 and fresh.doc.locked is False


async def test_optimistic_concurrency_and_update(redis: Redis, key_prefix: str) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    await store.write(RuntimeFlags(gmail_ingress_enabled=False))
    with pytest.raises(ConfigConflict):
        await store.write(RuntimeFlags(), expected_version=0)
    days = list(range(7))

    def add(day: int) -> Any:
        def build(current: PollingConfig) -> PollingConfig:
            have = [] if current.active_days is UNSET else list(current.active_days)
            return apply_changes(PollingConfig, current, {"active_days": [*have, day]})

        return build

    merged = await asyncio.gather(*(store.update(PollingConfig, add(d)) for d in days))
    assert {m.version for m in merged} == {1, 2, 3, 4, 5, 6, 7}
    final = await store.read(PollingConfig)
    assert final.doc.active_days == days, "no concurrent update lost"


async def test_stored_values_that_no_longer_validate_are_dropped_not_fatal(
    redis: Redis, key_prefix: str
) -> None:
    """A document written by another version (a removed field, a bad value) still loads."""
    keys = Keys(key_prefix)
    await redis.hset(
        keys.config(WebhookConfig.NAME),
        mapping={
            "data": json.dumps(
                {
                    "webhook_url": "https://hooks.receiver.fr/x",
                    "require_attachments": True,
                    "webhook_delivery_mode": "carrier-pigeon",
                }
            ),
            "version": "3",
        },
    )
    loaded = await ConfigStore(redis, keys).read(WebhookConfig)
    assert loaded.version == 3
    assert loaded.doc.webhook_url == "https://hooks.receiver.fr/x"
    assert loaded.doc.webhook_delivery_mode is UNSET


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"webhook_time_start": "25:00", "webhook_time_end": "10:00"}, "webhook_time_start"),
        ({"webhook_time_start": "09:00"}, "both or neither"),
        ({"webhook_url": "https://example.com/x"}, "webhook_url: placeholder"),
        ({"absence_pause_enabled": True}, "absence_pause_enabled"),
        ({"absence_pause_days": ["lundi"]}, "absence_pause_days"),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"webhook_ssl_verify": "yes"}, "webhook_ssl_verify"),
    ],
)
def test_invalid_changes_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigInvalid, match=message):
        apply_changes(WebhookConfig, WebhookConfig(), changes)


def test_original_input_forms_are_accepted() -> None:
    web = apply_changes(
        WebhookConfig,
        WebhookConfig(webhook_url="https://hooks.receiver.fr/a"),
        {"webhook_time_start": "9h00", "webhook_time_end": "17h30", "webhook_url": ""},
    )
    assert (web.webhook_time_start, web.webhook_time_end) == ("09:00", "17:30")
    assert web.webhook_url is UNSET, "an empty URL returns to the environment default"
    polling = apply_changes(
        PollingConfig,
        PollingConfig(),
        {"active_days": "4,0,2", "sender_of_interest_for_polling": "A@B.fr, a@b.fr,c@d.fr"},
    )
    assert polling.active_days == [0, 2, 4]
    assert polling.sender_of_interest_for_polling == ["a@b.fr", "c@d.fr"]
    assert msgspec.to_builtins(polling)["active_days"] == [0, 2, 4]
