"""Redis client factory with timeouts that suit blocking stream reads.

redis-py's default 5 s socket timeout kills any XREADGROUP blocking as long,
and no timeout at all lets a consumer sit on a dead socket forever. So the read
timeout is always well above the longest BLOCK we issue, a health check pings
idle connections, and connection errors are retried with capped backoff.
Commands that do not block share one multiplexed connection
(:mod:`render_signal.common.redismux`: a fifth of redis-py's client CPU per
pipeline).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from render_signal.common.redismux import MultiplexedRedis

__all__ = ["DEFAULT_BLOCK_MS", "create_redis"]

#: Longest BLOCK any consumer issues; socket timeout stays above it.
DEFAULT_BLOCK_MS = 2000


def create_redis(url: str, *, block_ms: int = DEFAULT_BLOCK_MS, retries: int = 3) -> Redis:
    """An asyncio Redis client for ``url`` (bytes responses).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        block_ms: the longest blocking read this client will issue.
        retries: connection-error retries per command before raising.
    """
    return MultiplexedRedis.from_url(
        url,
        socket_timeout=block_ms / 1000 + 5.0,
        socket_connect_timeout=5.0,
        health_check_interval=15,
        socket_keepalive=True,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        decode_responses=False,
    )
