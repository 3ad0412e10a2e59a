"""What a Redis round trip costs our client: redis-py's own path against ours.

Against a private ``redis-server``, in one event loop (uvloop, as the services
run), the client CPU (``time.process_time``) per operation of:

* ``SET`` one after the other, and a 10-command ``MULTI`` (the shape of
  offload's and notify's writes), through redis-py's pooled client (the
  baseline: what the services used before issue 16's seventh pass) and through
  :class:`~render_signal.common.redismux.MultiplexedRedis` (what
  ``create_redis`` returns);
* 50 concurrent ``SET`` (entries handled in tasks of their own), both clients;
* the floor: the same ``SET`` on a bare asyncio protocol with hiredis, no
  client library at all.

Ratios are ours over redis-py's (lower is better) and ours over the floor.
``run() -> dict``.
"""

from __future__ import annotations

import asyncio
import collections
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import hiredis
import uvloop
from redis.asyncio import Redis
from render_signal.common.redismux import MultiplexedRedis
from render_signal.devstack.redisserver import RedisServer

N = 3000


class _Bare(asyncio.Protocol):
    """The floor: RESP over a bare transport, replies matched in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's TCPTransport is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.waiters.popleft().set_result(reply)

    async def call(self, *args: bytes) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        self.transport.write(hiredis.pack_command(args))
        return await future


async def _us_per_op(op: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(200):
        await op()
    started = time.process_time()
    for _ in range(n):
        await op()
    return round((time.process_time() - started) / n * 1e6, 1)


async def _client(redis: Redis) -> dict[str, float]:
    async def multi() -> Any:
        async with redis.pipeline(transaction=True) as pipe:
            for i in range(10):
                pipe.hset("bench:h", f"f{i}", b"v")
            return await pipe.execute()

    async def fifty() -> Any:
        return await asyncio.gather(*(redis.set(f"bench:c{i}", b"x") for i in range(50)))

    return {
        "set": await _us_per_op(lambda: redis.set("bench:k", b"x"), N),
        "multi10": await _us_per_op(multi, N // 3),
        "set_50_concurrent": round(await _us_per_op(fifty, N // 50) / 50, 1),
    }


async def _measure(url: str, port: int) -> dict[str, Any]:
    plain = Redis.from_url(url)
    ours = MultiplexedRedis.from_url(url)
    try:
        base = await _client(plain)
        mux = await _client(ours)
    finally:
        await plain.aclose()
        await ours.aclose()
    loop = asyncio.get_running_loop()
    transport, bare = await loop.create_connection(_Bare, "127.0.0.1", port)
    try:
        floor = await _us_per_op(lambda: bare.call(b"SET", b"bench:k", b"x"), N)
    finally:
        transport.close()
    return {
        "client_us_per_set_redis_py": base["set"],
        "client_us_per_set_ours": mux["set"],
        "client_us_per_set_bare_hiredis": floor,
        "client_us_per_multi10_redis_py": base["multi10"],
        "client_us_per_multi10_ours": mux["multi10"],
        "client_us_per_concurrent_set_redis_py": base["set_50_concurrent"],
        "client_us_per_concurrent_set_ours": mux["set_50_concurrent"],
        "ratio_set_ours_vs_redis_py": round(mux["set"] / base["set"], 3),
        "ratio_multi10_ours_vs_redis_py": round(mux["multi10"] / base["multi10"], 3),
        "ratio_concurrent_set_ours_vs_redis_py": round(
            mux["set_50_concurrent"] / base["set_50_concurrent"], 3
        ),
        "ratio_set_ours_vs_bare_hiredis": round(mux["set"] / floor, 3),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rs-redis-bench-") as folder:
        server = RedisServer(Path(folder), aof=False).start()
        try:
            return uvloop.run(_measure(server.url, server.port))
        finally:
            server.stop()


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
