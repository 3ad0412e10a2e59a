"""Runs notify as a real subprocess against the test Redis (crash / restart tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from render_signal.common.keys import Keys
from render_signal.devstack.receiver import Receiver

INSTANCE = "notify-crash-test"


def start_notify(
    redis_url: str, prefix: str, rx: Receiver, tmp: Path, fault: str = "", **extra: str
) -> Any:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "RENDER_SIGNAL_ENV": "dev",
        "RENDER_SIGNAL_ENV_FILE": str(tmp / "absent.env"),
        "RENDER_SIGNAL_INSTANCE": INSTANCE,
        "WEBHOOK_URL": rx.url,
        "NOTIFY_METRICS_PORT": "0",
        "NOTIFY_SCHEDULER_INTERVAL_SECONDS": "0.05",
        "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "ALLOW_CUSTOM_WEBHOOK_WITHOUT_LINKS": "true",
        "LOG_FORMAT": "json",
        "RENDER_SIGNAL_FAULT": fault,
        **extra,
    }
    path = tmp / f"notify-{time.monotonic_ns()}.log"
    with path.open("wb") as log:
        proc: Any = subprocess.Popen(
            [sys.executable, "-m", "render_signal.notify.main"], env=env, stdout=log, stderr=log
        )
    proc.log_path = path
    return proc


def wait_exit(proc: Any, timeout: float = 20.0) -> int:
    try:
        return int(proc.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("notify did not exit") from None


async def heartbeat_info(redis: Redis, prefix: str) -> dict[str, Any]:
    raw = await redis.get(Keys(prefix).heartbeat("notify", INSTANCE))
    details: dict[str, Any] = json.loads(raw)["details"] if raw else {}
    return details
