"""(4) SIGKILL between the receiver's reply and the ack; SIGTERM restart never resends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_harness import make_event
from receiver import Receiver
from redis.asyncio import Redis
from render_signal.common.events import STREAM_MAIL_OFFLOADED
from render_signal.common.streams import ensure_group, publish
from render_signal.notify.weblog import read_webhook_logs


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def start_notify(redis_url: str, prefix: str, rx: Receiver, tmp: Path, fault: str = "") -> Any:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "RENDER_SIGNAL_ENV_FILE": str(tmp / "absent.env"),
        "RENDER_SIGNAL_INSTANCE": "notify-crash-test",
        "WEBHOOK_URL": rx.url(),
        "NOTIFY_METRICS_PORT": "0",
        "NOTIFY_SCHEDULER_INTERVAL_SECONDS": "0.05",
        "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS": "true",
        "LOG_FORMAT": "json",
        "RENDER_SIGNAL_FAULT": fault,
    }
    log = (tmp / f"notify-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "render_signal.notify.main"], env=env, stdout=log, stderr=log
    )


def wait_exit(proc: Any, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return int(code)
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("notify did not exit")


async def wait_settled(redis: Redis, stream: str, entry_id: str, wid: str, prefix: str) -> None:
    """Until the group has delivered and acked ``entry_id`` and the send is recorded."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = await redis.xinfo_groups(stream)
        group = next(g for g in groups if g["name"] == b"notify")
        last = group["last-delivered-id"].decode()
        sent = await redis.exists(f"{prefix}notify:sent:{wid}")
        if group["pending"] == 0 and last >= entry_id and sent:
            return
        await _pause()
    raise AssertionError("notify did not settle")


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def successes(redis: Redis, prefix: str, email_id: str) -> int:
    logs = await read_webhook_logs(redis, prefix, 30, limit=500)
    return sum(1 for e in logs if e["email_id"] == email_id and e["status"] == "success")


async def test_sigkill_after_send_before_ack_then_restart(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    entry = await publish(redis, stream, event)
    proc = start_notify(redis_url, key_prefix, rx, tmp_path, fault="notify.after_send")
    try:
        rx.wait_for(1, timeout=30)
        assert wait_exit(proc) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    pending = await redis.xpending(stream, "notify")
    assert pending["pending"] == 1  # the entry was never acked
    wid = rx.ids()[0]
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        await wait_settled(redis, stream, entry, wid, key_prefix)
        assert 1 <= len(rx.requests) <= 2
        assert set(rx.ids()) == {wid}
        assert await successes(redis, key_prefix, event.email_id) == 1
        assert await redis.zcard(f"{key_prefix}notify:scheduled") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0


async def test_sigterm_restart_never_sends_twice(
    redis: Redis, redis_url: str, key_prefix: str, rx: Receiver, tmp_path: Path
) -> None:
    stream = f"{key_prefix}{STREAM_MAIL_OFFLOADED}"
    await ensure_group(redis, stream, "notify", "0")
    event = make_event()
    entry = await publish(redis, stream, event)
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        rx.wait_for(1, timeout=30)
        wid = rx.ids()[0]
        await wait_settled(redis, stream, entry, wid, key_prefix)
    finally:
        proc.send_signal(signal.SIGTERM)
    assert wait_exit(proc) == 0
    proc = start_notify(redis_url, key_prefix, rx, tmp_path)
    try:
        # The same event published again (an upstream redelivery) is not re-sent.
        again = await publish(redis, stream, event)
        await wait_settled(redis, stream, again, wid, key_prefix)
        heartbeat = f"{key_prefix}heartbeat:notify:notify-crash-test"
        deadline = time.monotonic() + 10
        while not await redis.exists(heartbeat) and time.monotonic() < deadline:
            await _pause()
        info = json.loads(await redis.get(heartbeat))
        assert info["deferred"] == 0
        assert rx.ids() == [wid]
        assert await successes(redis, key_prefix, event.email_id) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc) == 0
