"""Pytest fixtures shared by every member: real Redis, isolation, component guards.

Redis for a test session comes from, in order: ``REDIS_URL`` (a server you
run), testcontainers when a container engine answers (``DOCKER_HOST`` or
Docker's socket; ``devstack.containers``), else a local or embedded
``redis-server`` on a free port. Tests that kill and restart Redis use
``own_redis`` which always starts a private server.

Each test gets a unique key prefix (``key_prefix``), so streams and keys never
collide between tests sharing one server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from render_signal.common.redisclient import create_redis
from render_signal.devstack.containers import engine_answers, redis_container
from render_signal.devstack.redisserver import RedisServer, find_redis_server

__all__ = ["require_component"]

logger = logging.getLogger(__name__)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_component(available: bool, reason: str) -> None:
    """Skip locally when a real component can't start; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required component unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Redis server shared by this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with contextlib.ExitStack() as stack:
        if os.environ.get("RENDER_SIGNAL_TEST_DOCKER", "1") != "0" and engine_answers():
            try:
                url = stack.enter_context(redis_container())
            except Exception as exc:
                logger.warning("Redis container did not start (%.300r); using redis-server", exc)
            else:
                print(f"\nrender-signal tests: session Redis in a container at {url}")
                yield url
                return
        require_component(find_redis_server() is not None, "no redis-server binary available")
        folder = tmp_path_factory.mktemp("redis-session")
        yield stack.enter_context(RedisServer(folder, aof=False)).url


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


# -- the checkout is the developer's ------------------------------------------------------
#: Caches and installs that tools (not tests) keep in the checkout.
_TOOL_DIRS = frozenset(
    {
        ".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache",
        ".ruff_cache", ".hypothesis", ".wrangler", ".run",
    }
)  # fmt: skip
_BEFORE = pytest.StashKey[frozenset[str]]()
_SCRATCH = pytest.StashKey[Path]()
_NEW_FILES = pytest.StashKey[list[str]]()


def checkout_files(root: Path) -> frozenset[str]:
    """Files under ``root`` outside tool caches, relative (``data/webhook_links.json``).

    ``.run/`` is ``make run``'s own state (Redis data, logs), written while the
    developer's stack runs beside the tests.
    """
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _TOOL_DIRS and not d.endswith(".egg-info")]
        base = Path(folder).relative_to(root)
        found.update(str(base / name) for name in files)
    return frozenset(found)


def pytest_configure(config: pytest.Config) -> None:
    """Keep tests off the developer's files: their ``.env`` (written by ``make run``)
    and the dev links file the dashboard shows. Services a test starts inherit this
    environment; a test that wants a file passes its own path."""
    scratch = Path(tempfile.mkdtemp(prefix="render-signal-tests-"))
    config.stash[_SCRATCH] = scratch
    os.environ["RENDER_SIGNAL_ENV_FILE"] = str(scratch / "absent.env")
    os.environ["WEBHOOK_LINKS_FILE"] = str(scratch / "webhook_links.json")
    if (config.rootpath / ".git").exists():
        config.stash[_BEFORE] = checkout_files(config.rootpath)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it left new files in the checkout."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    new = sorted(checkout_files(session.config.rootpath) - before)
    session.config.stash[_NEW_FILES] = new
    if new and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    new = terminalreporter.config.stash.get(_NEW_FILES, [])
    if new:
        terminalreporter.section("files the tests left in the checkout", red=True)
        for path in new[:50]:
            terminalreporter.write_line(f"  {path}")
        terminalreporter.write_line("Tests must write under tmp_path, never into the checkout.")


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_SCRATCH, None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
