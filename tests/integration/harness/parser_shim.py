"""Stop-gap: run ingest's parser consumer as its own process.

Used by the harness only while ``render-signal-ingest`` does not start the
parser itself (``render_signal.ingest.main`` wiring only the IMAP watcher).
Same settings, same consumer group and stable consumer name as the service.
"""

from __future__ import annotations

import asyncio

from render_signal.common.logs import setup_logging
from render_signal.common.redisclient import create_redis
from render_signal.common.runtime import install_stop_signals
from render_signal.common.settings import load_or_exit
from render_signal.ingest.parser_service import run_parser
from render_signal.ingest.settings import read_settings


async def _run() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("ingest", settings.common.log_level, settings.common.log_format)
    redis = create_redis(settings.common.redis_url)
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        await run_parser(settings, redis, stop)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(_run())
