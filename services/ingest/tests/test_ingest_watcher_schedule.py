"""The polling schedule: pure rules, and changes through the config store without a restart."""

from __future__ import annotations

import datetime as dt

import pytest
from ingest_testkit import make_email, message_id_of, metric, mid, raw_events
from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually
from render_signal.ingest.schedule import PollingSchedule

UTC = dt.UTC
SUNDAY_2330 = dt.datetime(2026, 2, 8, 23, 30, tzinfo=UTC)  # weekday() == 6


@pytest.mark.parametrize(
    ("doc", "now", "active"),
    [
        ({}, SUNDAY_2330, True),  # empty document: always active
        ({"enable_polling": False}, SUNDAY_2330, False),
        ({"active_days": [0, 1, 2, 3, 4]}, SUNDAY_2330, False),
        ({"active_start_hour": 22, "active_end_hour": 2}, SUNDAY_2330, True),  # wraps
        ({"active_start_hour": 22, "active_end_hour": 2}, SUNDAY_2330.replace(hour=2), False),
        ({"active_start_hour": 22, "active_end_hour": 2}, SUNDAY_2330.replace(hour=1), True),
        ({"active_start_hour": 9, "active_end_hour": 9}, SUNDAY_2330.replace(hour=9), False),
        ({"active_start_hour": 9, "active_end_hour": 17}, SUNDAY_2330.replace(hour=9), True),
        ({"active_start_hour": 9, "active_end_hour": 17}, SUNDAY_2330.replace(hour=17), False),
        ({"vacation_start": "2026-02-08", "vacation_end": "2026-02-08"}, SUNDAY_2330, False),
        ({"vacation_start": "2026-02-01", "vacation_end": "2026-02-07"}, SUNDAY_2330, True),
        ({"enable_polling": "false"}, SUNDAY_2330, False),
    ],
)
def test_schedule_rules(doc: dict, now: dt.datetime, active: bool) -> None:
    assert PollingSchedule.from_document(doc).is_active(now) is active


async def _no_events(redis: Redis, key_prefix: str) -> bool:
    return await raw_events(redis, key_prefix) == []


async def test_enable_polling_change_applies_without_restart(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    store = ConfigStore(redis, key_prefix)
    await store.put("polling_config", {"enable_polling": False})
    running = await start_watcher(settings_for())
    watcher = running.watcher
    await eventually(lambda: _at_least(watcher, 1), 10, "first schedule check")
    message = make_email("held back by the schedule")
    dovecot.append(message)
    checks = watcher.schedule_checks
    await eventually(lambda: _at_least(watcher, checks + 3), 10, "three re-checks after the append")
    assert await _no_events(redis, key_prefix)
    assert metric("render_signal_imap_connected") == 0.0
    assert metric("render_signal_imap_schedule_active") == 0.0

    await store.update("polling_config", {"enable_polling": True})

    async def published() -> list:
        return await raw_events(redis, key_prefix)

    (event,) = await eventually(published, 10, "the email once polling is enabled")
    assert message_id_of(event) == mid(message)


async def test_active_days_and_hours_follow_the_injected_clock(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    store = ConfigStore(redis, key_prefix)
    await store.put("polling_config", {"active_days": [0, 1, 2, 3, 4]})  # weekdays only
    running = await start_watcher(settings_for(), clock=lambda: SUNDAY_2330)
    watcher = running.watcher
    message = make_email("sunday night")
    dovecot.append(message)
    checks = watcher.schedule_checks
    await eventually(lambda: _at_least(watcher, checks + 3), 10, "re-checks on Sunday")
    assert await _no_events(redis, key_prefix)

    await store.update(
        "polling_config", {"active_days": [6], "active_start_hour": 22, "active_end_hour": 2}
    )

    async def published() -> list:
        return await raw_events(redis, key_prefix)

    (event,) = await eventually(published, 10, "the email inside the wrapped window")
    assert message_id_of(event) == mid(message)


async def _at_least(watcher: object, n: int) -> bool:
    return getattr(watcher, "schedule_checks", 0) >= n
