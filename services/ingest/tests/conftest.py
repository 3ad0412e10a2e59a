"""Fixtures for the ingest IMAP tests: a real Dovecot, settings, a running watcher."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from render_signal.common.configstore import ConfigStore, ConfigWatcher
from render_signal.common.keys import Keys
from render_signal.common.settings import EnvReader
from render_signal.common.streams import ensure_group
from render_signal.devstack.dovecot import DovecotServer, dovecot_binary
from render_signal.devstack.pytest_plugin import require_component
from render_signal.ingest.parser_service import run_parser
from render_signal.ingest.settings import IngestSettings, read_settings
from render_signal.ingest.watcher import ImapWatcher

# The test modules import their helpers (ingest_testkit, parser_testkit) from this directory.
sys.path.insert(0, str(Path(__file__).parent))

from parser_testkit import FIXED_NOW, Parser, build_settings


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A fresh Dovecot (own port, own Maildir) for one test."""
    require_component(dovecot_binary() is not None, "dovecot is not installed")
    server = DovecotServer()
    try:
        server.start()
    except RuntimeError as exc:
        server.close()
        require_component(False, f"dovecot cannot start: {exc}")
    try:
        yield server
    finally:
        server.close()


def imap_env(
    redis_url: str, key_prefix: str, port: int, user: str = "alice", password: str = "secret"
) -> dict[str, str]:
    """Environment for an ingest process watching the test Dovecot (plain IMAP, test mode)."""
    return {
        "RENDER_SIGNAL_ENV": "test",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "IMAP_SERVER": "127.0.0.1",
        "IMAP_PORT": str(port),
        "IMAP_USE_SSL": "false",
        "EMAIL_ADDRESS": user,
        "EMAIL_PASSWORD": password,
        "IMAP_TIMEOUT_SECONDS": "5",
        "IMAP_RECONNECT_BASE_SECONDS": "0.1",
        "IMAP_RECONNECT_MAX_SECONDS": "0.5",
        "POLLING_INACTIVE_CHECK_INTERVAL_SECONDS": "0.2",
        "POLLING_TIMEZONE": "UTC",
        "INGEST_METRICS_PORT": "0",
        "LOG_FORMAT": "text",
    }


def make_settings(base: dict[str, str], **overrides: str) -> IngestSettings:
    reader = EnvReader({**base, **overrides}, {})
    settings = read_settings(reader)
    reader.check()
    return settings


@pytest.fixture
def ingest_env(redis_url: str, key_prefix: str, dovecot: DovecotServer) -> dict[str, str]:
    """Environment for a watcher on the test Dovecot."""
    return imap_env(redis_url, key_prefix, dovecot.port)


@pytest.fixture
def settings_for(ingest_env: dict[str, str]) -> Callable[..., IngestSettings]:
    """``settings_for(IMAP_PORT="123", ...)``: IngestSettings from ingest_env + overrides."""
    return lambda **overrides: make_settings(ingest_env, **overrides)


class RunningWatcher:
    """An in-process ImapWatcher plus its ConfigWatcher listener."""

    def __init__(self, watcher: ImapWatcher, store: ConfigStore) -> None:
        self.watcher = watcher
        self.store = store
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> RunningWatcher:
        self.tasks = [
            asyncio.create_task(self.watcher.run(self.stop)),
            asyncio.create_task(self.watcher.config.listen(self.stop)),
        ]
        return self

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), timeout=20)
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


@pytest.fixture
async def start_watcher(
    redis: Redis, key_prefix: str
) -> AsyncIterator[Callable[..., Awaitable[RunningWatcher]]]:
    """``await start_watcher(settings, clock=None)`` -> a running in-process watcher."""
    running: list[RunningWatcher] = []

    async def _start(settings: IngestSettings, **kwargs: Any) -> RunningWatcher:
        store = ConfigStore(redis, Keys(key_prefix))
        config = ConfigWatcher(store, max_staleness_s=0.5)
        item = RunningWatcher(ImapWatcher(settings, redis, config, **kwargs), store)
        running.append(item)
        return await item.start()

    yield _start
    for item in running:
        with contextlib.suppress(Exception):
            await item.close()


@pytest.fixture
async def start_parser(
    redis: Redis, redis_url: str, key_prefix: str
) -> AsyncIterator[Callable[..., Awaitable[Parser]]]:
    """``await start_parser(**env)`` -> the parser component running on the test Redis."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def _start(**extra: str) -> Parser:
        settings = build_settings(redis_url, key_prefix, **extra)
        parser = Parser(redis, settings)
        await ensure_group(redis, parser.raw_key, "ingest", "0")
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_parser(settings, redis, stop, now=lambda: FIXED_NOW, claim_idle_ms=500)
        )
        stops.append((stop, task))
        return parser

    yield _start
    for stop, task in stops:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
