"""The guarded transport's own HTTP/1.1 (``httpwire``), against a scripted loopback server.

The server answers each request with the next scripted response, byte for
byte, so framing that a well-behaved receiver never produces (chunked with
trailers, interim 100, conflicting lengths, a head that never ends, a body
bigger than the cap, a close after the response) can be exercised. It
records every request and counts connections, so keep-alive reuse is
observable from outside.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from render_signal.common.httpwire import MAX_BODY_BYTES, MAX_HEAD_BYTES
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.outboundhttp import GuardedClient, guarded_client

CLOSE = b"<close>"  # script item: close instead of answering; as a suffix: close after it
STALL = b"<stall>"  # script item: never answer


class ScriptedServer:
    def __init__(self) -> None:
        self.script: list[bytes] = []
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append((head, await reader.readexactly(length)))
                answer = self.script.pop(0) if self.script else ok(b"{}")
                if answer == CLOSE:
                    return
                if answer == STALL:
                    await asyncio.sleep(30)
                    return
                then_close = answer.endswith(CLOSE)
                writer.write(answer.removesuffix(CLOSE))
                await writer.drain()
                if then_close or b"connection: close" in answer.lower():
                    return
        finally:
            writer.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    yield srv
    await srv.stop()


def client(**kwargs: object) -> httpx.AsyncClient:
    return guarded_client(OutboundPolicy(dev_mode=True), timeout=5, **kwargs)  # type: ignore[arg-type]


async def test_keep_alive_reuses_one_connection_and_frames_the_request(
    server: ScriptedServer,
) -> None:
    async with client() as c:
        for n in range(3):
            response = await c.post(f"{server.url}/hook?n={n}", content=b'{"a":1}')
            assert response.status_code == 200 and response.json() == {}
    assert server.connections == 1
    head, body = server.requests[2]
    assert head.startswith(b"POST /hook?n=2 HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7\r\n" in head and body == b'{"a":1}'
    assert b"\r\nHost: 127.0.0.1:" in head


async def test_chunked_with_extensions_and_trailers_then_reuse(server: ScriptedServer) -> None:
    server.script.append(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"ok\r\n6\r\n": 1}\n\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    async with client() as c:
        first = await c.get(server.url)
        second = await c.get(server.url)
    assert first.json() == {"ok": 1}
    assert second.status_code == 200
    assert server.connections == 1


async def test_connection_close_and_stale_keep_alive_get_a_fresh_connection(
    server: ScriptedServer,
) -> None:
    server.script += [ok(b"a", b"Connection: close"), ok(b"b"), CLOSE]
    async with client() as c:
        assert (await c.get(server.url)).text == "a"
        assert (await c.get(server.url)).text == "b"
        # The server drops the kept-alive connection without answering: retried once, fresh.
        assert (await c.get(server.url)).status_code == 200
    assert server.connections == 3
    assert len(server.requests) == 4


async def test_a_fresh_connection_closed_without_answer_is_an_error(
    server: ScriptedServer,
) -> None:
    server.script.append(CLOSE)
    async with client() as c:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await c.post(server.url, content=b"x")
    assert len(server.requests) == 1  # not sent twice on a connection that was never reused


async def test_interim_100_skipped_and_bodiless_statuses(server: ScriptedServer) -> None:
    server.script += [
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done"),
        b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        ok(b"after"),
    ]
    async with client() as c:
        assert (await c.post(server.url, content=b"x")).text == "done"
        assert (await c.post(server.url, content=b"x")).status_code == 204
        assert (await c.get(server.url)).text == "after"
    assert server.connections == 1


async def test_http_1_0_read_to_eof_and_gzip_decoded(server: ScriptedServer) -> None:
    packed = gzip.compress(b'{"success": true}')
    server.script += [
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end" + CLOSE,
        ok(packed, b"Content-Encoding: gzip"),
    ]
    async with client() as c:
        assert (await c.get(server.url)).text == "until the end"
        assert (await c.get(server.url)).json() == {"success": True}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "inside the response body"),
    ],
)
async def test_malformed_responses_are_protocol_errors(
    server: ScriptedServer, answer: bytes, message: str
) -> None:
    server.script.append(answer + CLOSE)
    async with client() as c:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await c.get(server.url)


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_head_that_never_ends_is_bounded(server: ScriptedServer) -> None:
    server.script.append(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * (MAX_HEAD_BYTES + 10))
    async with client() as c:
        with pytest.raises(httpx.RemoteProtocolError, match="response head over"):
            await c.get(server.url)


async def test_a_huge_body_is_cut_at_the_cap_and_the_connection_dropped(
    server: ScriptedServer,
) -> None:
    big = b"x" * (MAX_BODY_BYTES * 3)
    server.script += [ok(big), ok(b"next")]
    async with client() as c:
        response = await c.get(server.url)
        assert len(response.content) == MAX_BODY_BYTES
        assert (await c.get(server.url)).text == "next"
    assert server.connections == 2  # the partly read connection was not reused


async def test_read_timeout_frees_the_slot(server: ScriptedServer) -> None:
    server.script += [STALL, ok(b"later")]
    limits = httpx.Limits(max_connections=1)
    async with client(limits=limits) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(server.url, timeout=httpx.Timeout(5, read=0.3))
        assert (await c.get(server.url)).text == "later"


async def test_max_connections_bounds_concurrent_requests(server: ScriptedServer) -> None:
    server.script.append(STALL)
    limits = httpx.Limits(max_connections=1)
    async with client(limits=limits) as c:
        stalled = asyncio.create_task(c.get(server.url, timeout=httpx.Timeout(5, read=2)))
        await _until(lambda: bool(server.requests))
        with pytest.raises(httpx.PoolTimeout):
            await c.get(server.url, timeout=httpx.Timeout(5, pool=0.2))
        with pytest.raises(httpx.ReadTimeout):
            await stalled
    assert server.connections == 1


async def test_connection_refused_is_a_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{port}/")


async def test_post_bytes_sends_what_post_sends_and_reads_the_answer(
    server: ScriptedServer,
) -> None:
    """``GuardedClient.post_bytes`` skips the client's per-request machinery (issue 16)
    but not its request: same head, same body, the answer read whole and decoded."""
    gz = gzip.compress(b'{"success": true}')
    server.script = [ok(b"{}"), ok(gz, b"Content-Encoding: gzip", b"X-Seen: 1")]
    extra = {"X-Token": "t", "user-agent": "render-signal-test/1", "Content-Type": "text/x"}
    async with guarded_client(
        OutboundPolicy(dev_mode=True), timeout=5, headers={"User-Agent": "base/1", "X-A": "a"}
    ) as c:
        await c.post(f"{server.url}/hook?x=1", content=b"abc", headers=extra)
        response = await c.post_bytes(
            f"{server.url}/hook?x=1", content=b"abc", headers=extra, timeouts=httpx.Timeout(5)
        )
    assert server.requests[0] == server.requests[1]
    head = server.requests[1][0].lower()
    assert b"\r\nuser-agent: render-signal-test/1\r\n" in head and head.count(b"user-agent") == 1
    assert b"\r\nx-a: a\r\n" in head and b"\r\naccept-encoding: " in head
    assert response.status_code == 200 and response.json() == {"success": True}
    assert response.headers["x-seen"] == "1" and response.request.url.path == "/hook"


async def test_post_bytes_read_timeout_is_httpx_s(server: ScriptedServer) -> None:
    server.script = [STALL]
    async with client() as c:
        assert isinstance(c, GuardedClient)
        with pytest.raises(httpx.ReadTimeout):
            await c.post_bytes(server.url, content=b"x", timeouts=httpx.Timeout(0.3))


async def test_post_bytes_keeps_each_url_to_itself(server: ScriptedServer) -> None:
    """Parsed URLs are kept per client: alternating targets each get their own path."""
    async with client() as c:
        assert isinstance(c, GuardedClient)
        for path in ("/a?x=1", "/b", "/a?x=1", "/b"):
            response = await c.post_bytes(
                f"{server.url}{path}", content=b"x", timeouts=httpx.Timeout(5)
            )
            assert response.request.url.raw_path == path.encode()
    targets = [head.split(b" ", 2)[1] for head, _ in server.requests]
    assert targets == [b"/a?x=1", b"/b", b"/a?x=1", b"/b"]
