"""Entry point: ``render-signal-offload``."""

from __future__ import annotations

import asyncio

from render_signal.common.logs import setup_logging
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import WorkerRuntime
from render_signal.common.settings import load_or_exit
from render_signal.offload.settings import OffloadSettings, read_settings

__all__ = ["main", "run"]


async def run(settings: OffloadSettings) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    redis = create_redis(settings.common.redis_url)
    runtime = WorkerRuntime(settings.common, redis)
    return await runtime.run([])


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("offload", settings.common.log_level, settings.common.log_format)
    raise SystemExit(asyncio.run(run(settings)))


if __name__ == "__main__":
    main()
