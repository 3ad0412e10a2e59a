"""The polling schedule: pure rules, and changes through the config store without a restart."""

from __future__ import annotations

import datetime as dt

import pytest
from ingest_testkit import make_email, message_id_of, metric, mid, raw_events
from redis.asyncio import Redis
from render_signal.common.configdocs import PollingConfig, apply_changes
from render_signal.common.configstore import ConfigStore
from render_signal.common.keys import Keys
from render_signal.common.settings import EnvReader
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually
from render_signal.ingest.schedule import PollingSchedule
from render_signal.ingest.settings import read_settings

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
    ],
)
def test_schedule_rules(doc: dict, now: dt.datetime, active: bool) -> None:
    config = apply_changes(PollingConfig, PollingConfig(), doc)
    settings = read_settings(EnvReader({"REDIS_URL": "redis://127.0.0.1:1/0"}, {}))
    assert PollingSchedule.effective(config, settings).is_active(now) is active


def test_environment_seeds_what_the_dashboard_has_not_set() -> None:
    env = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "POLLING_ACTIVE_DAYS": "0,1,2,3,4",
        "POLLING_ACTIVE_START_HOUR": "9",
        "POLLING_ACTIVE_END_HOUR": "23",
    }
    settings = read_settings(EnvReader(env, {}))
    monday_10h = dt.datetime(2026, 2, 9, 10, 0, tzinfo=UTC)
    assert not PollingSchedule.effective(PollingConfig(), settings).is_active(SUNDAY_2330)
    assert PollingSchedule.effective(PollingConfig(), settings).is_active(monday_10h)
    weekend = apply_changes(PollingConfig, PollingConfig(), {"active_days": [6]})
    late = apply_changes(PollingConfig, weekend, {"active_end_hour": 24})
    assert PollingSchedule.effective(late, settings).is_active(SUNDAY_2330)


async def _no_events(redis: Redis, key_prefix: str) -> bool:
    return await raw_events(redis, key_prefix) == []


async def test_enable_polling_change_applies_without_restart(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    await store.apply(PollingConfig, {"enable_polling": False})
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

    await store.apply(PollingConfig, {"enable_polling": True})

    async def published() -> list:
        return await raw_events(redis, key_prefix)

    (event,) = await eventually(published, 10, "the email once polling is enabled")
    assert message_id_of(event) == mid(message)


async def test_active_days_and_hours_follow_the_injected_clock(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    store = ConfigStore(redis, Keys(key_prefix))
    await store.apply(PollingConfig, {"active_days": [0, 1, 2, 3, 4]})  # weekdays only
    running = await start_watcher(settings_for(), clock=lambda: SUNDAY_2330)
    watcher = running.watcher
    message = make_email("sunday night")
    dovecot.append(message)
    checks = watcher.schedule_checks
    await eventually(lambda: _at_least(watcher, checks + 3), 10, "re-checks on Sunday")
    assert await _no_events(redis, key_prefix)

    await store.apply(
        PollingConfig, {"active_days": [6], "active_start_hour": 22, "active_end_hour": 2}
    )

    async def published() -> list:
        return await raw_events(redis, key_prefix)

    (event,) = await eventually(published, 10, "the email inside the wrapped window")
    assert message_id_of(event) == mid(message)


async def _at_least(watcher: object, n: int) -> bool:
    return getattr(watcher, "schedule_checks", 0) >= n
