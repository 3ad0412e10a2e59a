"""The worker runtime: components run until stopped."""

from __future__ import annotations

from typing import Any


async def test_a_component_that_returns_early_stops_the_process_with_an_error(
    redis_url: str, key_prefix: str, caplog: Any
) -> None:
    """Components run until stopped; one that returns is reported and exits 1."""
    import asyncio

    from render_signal.common.redisclient import create_redis
    from render_signal.common.runtime import WorkerRuntime
    from render_signal.common.settings import EnvReader, read_common

    env = EnvReader({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix,
                     "RENDER_SIGNAL_ENV": "dev", "NOTIFY_METRICS_PORT": "0"}, {})  # fmt: skip
    common = read_common(env, "notify")
    seen_stop: list[bool] = []

    async def quits_early(stop: asyncio.Event) -> None:
        return None

    async def well_behaved(stop: asyncio.Event) -> None:
        await stop.wait()
        seen_stop.append(True)

    runtime = WorkerRuntime(common, create_redis(redis_url))
    code = await asyncio.wait_for(runtime.run([quits_early, well_behaved]), timeout=30)
    assert code == 1
    assert seen_stop == [True], "the other components are stopped cleanly"
    assert any("ended unexpectedly" in r.getMessage() for r in caplog.records)
