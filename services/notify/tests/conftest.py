"""Notify test setup: helper modules importable, a recording receiver, harnesses."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


from collections.abc import AsyncIterator, Iterator  # noqa: E402

import pytest  # noqa: E402  (after the sys.path line that makes the helpers importable)
from notify_harness import Factory, Harness, make_settings  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from render_signal.devstack.clock import ManualClock  # noqa: E402
from render_signal.devstack.receiver import Receiver  # noqa: E402


@pytest.fixture
def rx() -> Iterator[Receiver]:
    """A recording webhook receiver on loopback."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
async def make(
    request: pytest.FixtureRequest, redis: Redis, redis_url: str, key_prefix: str, rx: Receiver
) -> AsyncIterator[Factory]:
    """Build in-process notify harnesses targeting ``rx``; the clock starts at the test
    module's ``START`` unless a test passes another start."""
    made: list[Harness] = []
    default_start: float = request.module.START

    def factory(start: float = default_start, **env: str) -> Harness:
        env.setdefault("WEBHOOK_URL", rx.url)
        harness = Harness(redis, make_settings(redis_url, key_prefix, **env), ManualClock(start))
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.aclose()
