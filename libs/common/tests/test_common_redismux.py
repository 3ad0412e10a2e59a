"""The multiplexed Redis client: redis-py's answers, one shared connection, failures.

Every test runs against a real redis-server. What is checked is what the
services rely on: the same replies as redis-py's own path (reply callbacks,
scripts, transactions and their errors), replies reaching the right caller
under concurrency and cancellation, blocking reads kept off the shared
connection, and a dead or silent server turned into redis-py's errors and a
fresh connection afterwards.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from render_signal.common.redisclient import create_redis
from render_signal.common.redismux import MultiplexedRedis
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import RedisServer, find_redis_server

SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
#: Keeps the server busy for ARGV[1] microseconds: a reply that comes late, on demand.
BUSY = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat
  local now = redis.call('TIME')
until now[1] * 1000000 + now[2] - start >= tonumber(ARGV[1])
return 1
"""


def busy(redis: Redis, seconds: float) -> asyncio.Task[Any]:
    return asyncio.create_task(redis.eval(BUSY, 0, int(seconds * 1_000_000)))  # type: ignore[arg-type]


async def exercise(redis: Redis, prefix: str) -> list[Any]:
    """A mix of the shapes the services read: callbacks, multi-word commands, scripts."""
    out: list[Any] = []
    out.append(await redis.set(f"{prefix}s", "é"))
    out.append(await redis.get(f"{prefix}s"))
    out.append(await redis.set(f"{prefix}s", "x", nx=True))
    out.append(await redis.hset(f"{prefix}h", mapping={"a": 1, "b": 2.5}))
    out.append(await redis.hgetall(f"{prefix}h"))
    out.append(await redis.zadd(f"{prefix}z", {"m": 1796596801.4137156}))
    out.append(await redis.zrange(f"{prefix}z", 0, -1, withscores=True))
    entry = await redis.xadd(f"{prefix}x", {"type": "t", "data": b"\x00\xff"})
    out.append([fields for _, fields in await redis.xrange(f"{prefix}x")])
    await redis.xgroup_create(f"{prefix}x", "g", id="0")
    read: Any = await redis.xreadgroup("g", "c", {f"{prefix}x": ">"}, count=10)
    entries = read[f"{prefix}x".encode()][0] if isinstance(read, dict) else read[0][1]
    out.append([fields for _, fields in entries])
    consumers: Any = await redis.xinfo_consumers(f"{prefix}x", "g")
    out.append([(c["name"], c["pending"]) for c in consumers])
    out.append(await redis.xack(f"{prefix}x", "g", entry))
    script = redis.register_script(SCRIPT)
    out.append(await script(keys=[f"{prefix}k"], args=["v1"]))
    await redis.script_flush()
    out.append(await script(keys=[f"{prefix}k"], args=["v2"]))  # NOSCRIPT: loaded again
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(f"{prefix}n").hget(f"{prefix}h", "a").exists(f"{prefix}s", f"{prefix}none")
        out.append(await pipe.execute())
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(f"{prefix}s").hmget(f"{prefix}h", ["a", "zz"]).ttl(f"{prefix}s")
        out.append(await pipe.execute())
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(f"{prefix}t", 1).lpush(f"{prefix}s", "wrong type").incr(f"{prefix}t")
        out.append([type(r).__name__ for r in await pipe.execute(raise_on_error=False)])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(f"{prefix}t").hget(f"{prefix}s", "wrong type")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await pipe.execute()
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await redis.lpush(f"{prefix}s", "x")
    return out


async def test_replies_are_redis_pys_own(own_redis: RedisServer) -> None:
    plain, mux = Redis.from_url(own_redis.url), create_redis(own_redis.url)
    assert isinstance(mux, MultiplexedRedis)
    try:
        expected = await exercise(plain, "mux:plain:")
        got = await exercise(mux, "mux:shared:")
    finally:
        await plain.aclose()
        await mux.aclose()
    assert got == expected
    assert got[1] == "é".encode() and got[2] is None and got[4] == {b"a": b"1", b"b": b"2.5"}


async def test_concurrent_callers_each_get_their_own_reply(own_redis: RedisServer) -> None:
    redis = create_redis(own_redis.url)
    try:
        await asyncio.gather(*(redis.set(f"mux:c:{i}", i) for i in range(500)))
        values = await asyncio.gather(*(redis.get(f"mux:c:{i}") for i in range(500)))
        sums = await asyncio.gather(
            *(
                redis.pipeline().incrby(f"mux:p:{i}", i).incrby(f"mux:p:{i}", i).execute()
                for i in range(200)
            )
        )
        clients: Any = await redis.client_list()
    finally:
        await redis.aclose()
    assert values == [str(i).encode() for i in range(500)]
    assert sums == [[i, 2 * i] for i in range(200)]
    # 700 commands in flight at once went through one connection, not a pool of them
    assert len(clients) <= 3


async def test_a_cancelled_caller_does_not_shift_the_replies_after_it(
    own_redis: RedisServer,
) -> None:
    redis = create_redis(own_redis.url)
    try:
        await redis.set("mux:after", "right")
        slow = busy(redis, 0.3)
        queued = asyncio.create_task(redis.get("mux:after"))
        await asyncio.sleep(0)  # both requests written
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await queued == b"right"
        assert await redis.get("mux:after") == b"right"
    finally:
        await redis.aclose()


async def test_blocking_reads_keep_their_own_connection(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        await redis.xgroup_create("mux:block", "g", id="$", mkstream=True)
        read = asyncio.create_task(
            redis.xreadgroup("g", "c", {"mux:block": ">"}, count=1, block=3000)
        )
        await asyncio.sleep(0)
        # Answered while the read still blocks: it is not queued behind it.
        assert await redis.set("mux:beside", 1)
        assert not read.done()
        await redis.xadd("mux:block", {"a": "1"})
        assert await read
    finally:
        await redis.aclose()


async def test_a_silent_server_times_out_every_waiter_then_reconnects(
    own_redis: RedisServer,
) -> None:
    redis = MultiplexedRedis.from_url(own_redis.url, socket_timeout=0.5, retry=None)
    plain = Redis.from_url(own_redis.url)
    try:
        await redis.set("mux:timeout", "still here")
        sleeping = busy(redis, 1.5)
        behind = asyncio.create_task(redis.get("mux:timeout"))
        with pytest.raises(RedisTimeoutError):
            await sleeping
        with pytest.raises(RedisTimeoutError):
            await behind  # its reply's place on the wire is unknown once one timed out
        assert await plain.ping()  # no timeout: answers once the busy script has ended
        assert await redis.get("mux:timeout") == b"still here"  # on a fresh connection
    finally:
        await redis.aclose()
        await plain.aclose()


async def test_a_killed_server_fails_the_command_and_a_restarted_one_serves_again(
    own_redis: RedisServer,
) -> None:
    redis = create_redis(own_redis.url, retries=1)
    try:
        assert await redis.set("mux:k", "before")
        await redis.execute_command("BGREWRITEAOF")
        own_redis.kill()
        with pytest.raises(RedisConnectionError):
            await redis.get("mux:k")
        await asyncio.to_thread(own_redis.start)
        assert await redis.set("mux:k", "after")
        assert await redis.get("mux:k") == b"after"
    finally:
        await redis.aclose()


async def test_a_lane_carries_one_callers_blocking_reads_on_its_own_connection(
    own_redis: RedisServer,
) -> None:
    redis = create_redis(own_redis.url)
    assert isinstance(redis, MultiplexedRedis)
    lane = redis.lane()
    try:
        await redis.xgroup_create("mux:lane", "g", id="$", mkstream=True)
        read = asyncio.create_task(
            lane.xreadgroup("g", "c", {"mux:lane": ">"}, count=1, block=3000)
        )
        await asyncio.sleep(0)
        assert await redis.set("mux:lane:beside", 1)  # the shared connection is not behind it
        assert not read.done()
        await redis.xadd("mux:lane", {"a": "1"})
        got: Any = await read
        async with lane.pipeline(
            transaction=False
        ) as pipe:  # XACK + blocking read, as consumers do
            pipe.xack("mux:lane", "g", *[entry_id for entry_id, _ in got[0][1]])
            pipe.xreadgroup("g", "c", {"mux:lane": ">"}, count=1, block=50)
            acked, empty = await pipe.execute()
        clients: Any = await redis.client_list()
    finally:
        await lane.aclose()
        await redis.aclose()
    assert got[0][1][0][1] == {b"a": b"1"}
    assert acked == 1 and not empty
    # the shared connection, the lane's, and the pooled one CLIENT LIST itself needs
    assert len(clients) <= 3


def answers(client: SyncRedis) -> bool:
    try:
        return bool(client.ping())
    except RedisConnectionError:
        return False


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A redis-server answering TLS only, with a certificate for 127.0.0.1: (url, CA file)."""
    binary, openssl = find_redis_server(), shutil.which("openssl")
    require_component(binary is not None and openssl is not None, "redis-server or openssl missing")
    assert binary is not None and openssl is not None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        try:
            # A server built without TLS refuses --tls-port and exits at once.
            output = server.communicate(timeout=0.5)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
            with SyncRedis.from_url(url) as client:
                wait_until(lambda: answers(client), what="the TLS redis-server")
            yield url, cert
        else:
            require_component("tls" not in output.lower(), "redis-server built without TLS")
            pytest.fail(f"TLS redis-server exited: {output[-500:]}")
    finally:
        server.kill()
        server.communicate(timeout=10)


async def test_tls_connections_carry_shared_commands_and_lane_reads(
    tls_redis: tuple[str, Path],
) -> None:
    """rediss:// (production's Redis is behind TLS): the shared connection and a lane
    open through redis-py's own TLS handshake, the certificate checked against the CA."""
    url, _ = tls_redis
    redis = create_redis(url)
    assert isinstance(redis, MultiplexedRedis)
    lane = redis.lane()

    try:
        assert await redis.set("mux:tls", "over tls")
        async with redis.pipeline() as pipe:
            pipe.incr("mux:tls:n").get("mux:tls")
            assert await pipe.execute() == [1, b"over tls"]
        await redis.xgroup_create("mux:tls:s", "g", id="$", mkstream=True)
        read = asyncio.create_task(lane.xreadgroup("g", "c", {"mux:tls:s": ">"}, block=3000))
        await asyncio.sleep(0)
        await redis.xadd("mux:tls:s", {"a": "1"})
        got: Any = await read
    finally:
        await lane.aclose()
        await redis.aclose()
    assert got[0][1][0][1] == {b"a": b"1"}


async def test_tls_with_an_unknown_certificate_is_refused(tls_redis: tuple[str, Path]) -> None:
    url, _ = tls_redis
    bare = url.split("?", 1)[0]  # the system's CAs only: our self-signed one is not among them
    redis = create_redis(bare, retries=0)
    try:
        with pytest.raises(RedisConnectionError, match=r"(?i)certificate"):
            await redis.set("mux:tls:refused", 1)
    finally:
        await redis.aclose()


async def connect_attempts(make: Any) -> int:
    """Connections a failing command opens against a server that hangs up at once."""
    accepted = 0

    def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(RedisConnectionError):
            await client.set("mux:never", 1)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    return accepted


async def test_a_failing_connect_is_retried_as_often_as_redis_py_retries_it() -> None:
    """The connect already runs the client's Retry; retrying it again around the
    command would multiply the attempts (each up to the connect timeout)."""
    ours = await connect_attempts(lambda url: create_redis(url, retries=3))
    # redis-py's own client on a pool with exactly create_redis's settings
    pooled = await connect_attempts(
        lambda url: Redis(connection_pool=create_redis(url, retries=3).connection_pool)
    )
    assert ours == pooled > 0
