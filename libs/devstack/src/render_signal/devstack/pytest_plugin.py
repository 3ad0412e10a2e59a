"""Pytest fixtures shared by every member: real Redis, isolation, component guards.

Redis for a test session comes from, in order: ``REDIS_URL`` (a server you
run), testcontainers when a Docker engine answers, else a local or embedded
``redis-server`` on a free port. Tests that kill and restart Redis use
``own_redis`` which always starts a private server.

Each test gets a unique key prefix (``key_prefix``), so streams and keys never
collide between tests sharing one server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from render_signal.common.redisclient import create_redis
from render_signal.devstack.redisserver import RedisServer, find_redis_server

__all__ = ["require_component"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_component(available: bool, reason: str) -> None:
    """Skip locally when a real component can't start; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required component unavailable in CI: {reason}")
    pytest.skip(reason)


def _docker_redis_url() -> tuple[str, object] | None:
    """A Redis container when an engine answers; None otherwise (fast failure)."""
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        return None
    try:
        container = RedisContainer("redis:7-alpine")
        container.start()
    except Exception:  # docker.errors.DockerException when no engine answers
        return None
    host = container.get_container_host_ip()
    port = container.get_exposed_port(6379)
    return f"redis://{host}:{port}/0", container


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Redis server shared by this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if os.environ.get("RENDER_SIGNAL_TEST_DOCKER", "1") != "0":
        # Fails in milliseconds (DockerException) when no engine answers.
        found = _docker_redis_url()
        if found is not None:
            url, container = found
            yield url
            container.stop()  # type: ignore[attr-defined]
            return
    require_component(find_redis_server() is not None, "no redis-server binary available")
    server = RedisServer(tmp_path_factory.mktemp("redis-session"), aof=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with AOF, for tests that kill or restart it."""
    require_component(find_redis_server() is not None, "no redis-server binary available")
    server = RedisServer(tmp_path / "redis", aof=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_prefix() -> str:
    """A unique key prefix isolating this test's streams and keys."""
    return f"rstest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[Redis]:
    """An asyncio client on the session server; this test's keys deleted afterwards."""
    client = create_redis(redis_url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
