"""httpx clients that connect only where :class:`~.outbound.OutboundPolicy` allows.

The check runs inside the transport, at connect time: :class:`GuardedTransport`
resolves the host itself through the policy, refuses the connection when any
address is forbidden, and opens the socket to the address it checked (pinned:
there is no second lookup a rebinding DNS server could answer differently).
TLS is unchanged: the URL's host name is sent as SNI and the certificate is
verified against it, and the ``Host`` header still carries the name.

The transport speaks HTTP/1.1 itself (:mod:`.httpwire`) on asyncio streams
with a small keep-alive pool, under httpx's client (its request building,
timeouts, content decoding and errors are unchanged for callers): httpcore's
layers cost ten times the framing per request (see :mod:`.httpwire`).

Clients never read proxy variables (``trust_env=False``): a proxy would make
the policy check the proxy's address instead of the destination's, and never
follow redirects (a redirect is a second destination nobody checked). The
trust store still honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``: that is how an
operator trusts a receiver's private CA (``deploy/compose/webhook-ca.override.yml``).

A refused connection surfaces as ``httpx.ConnectError``; :func:`refusal`
finds the :class:`~.errors.DestinationRefused` behind it, so callers can
treat it as permanent rather than retry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx
from render_signal.common.errors import DestinationRefused, DestinationUnresolved
from render_signal.common.httpwire import (
    MAX_HEAD_BYTES,
    Connection,
    Disconnected,
    WireError,
    WireResponse,
    request_head,
)
from render_signal.common.outbound import OutboundPolicy

__all__ = ["GuardedClient", "GuardedTransport", "guarded_client", "refusal"]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}
Origin = tuple[bytes, str, int]
_PARSED_URLS_KEPT: Final = 256


def _timeout(request: httpx.Request, phase: str) -> float | None:
    value = request.extensions.get("timeout", {}).get(phase)
    return float(value) if value is not None else None


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport: policy-checked pinned connects, HTTP/1.1, a keep-alive pool.

    ``limits.max_connections`` bounds the connections open at once (a request
    beyond it waits, up to the pool timeout), ``max_keepalive_connections``
    the idle ones kept, ``keepalive_expiry`` how long one stays idle.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        verify: bool | ssl.SSLContext = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self.policy = policy
        # trust_env here only reads SSL_CERT_FILE/SSL_CERT_DIR (the client ignores proxies).
        self._ssl = httpx.create_ssl_context(verify=verify, trust_env=True)
        self._slots = asyncio.Semaphore(limits.max_connections or 1_000_000)
        keep = limits.max_keepalive_connections
        self._keep = 1_000_000 if keep is None else keep
        self._expiry = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._idle: dict[Origin, list[Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        if not url.host:
            raise httpx.UnsupportedProtocol("request URL has no host", request=request)
        origin: Origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        body = await request.aread()
        method = request.method.encode()
        try:
            head = request_head(method, url.raw_path, list(request.headers.raw), len(body))
        except WireError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        async with self._slot(request):
            for attempt in (1, 2):
                connection = self._reuse(origin) if attempt == 1 else None
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(request, origin)
                try:
                    answer = await self._exchange(request, connection, method, head, body)
                except Disconnected as exc:
                    connection.close()
                    # A keep-alive connection the server closed as we wrote: once more, fresh.
                    if reused:
                        continue
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                except BaseException:
                    connection.close()
                    raise
                self._release(origin, connection, answer.keep_alive)
                return httpx.Response(
                    answer.status,
                    headers=answer.headers,
                    stream=httpx.ByteStream(answer.body),
                    extensions={"http_version": answer.version, "reason_phrase": answer.reason},
                )
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def aclose(self) -> None:
        self._closed = True
        idle = [c for connections in self._idle.values() for c in connections]
        self._idle.clear()
        for connection in idle:
            connection.close()

    @contextlib.asynccontextmanager
    async def _slot(self, request: httpx.Request) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(_timeout(request, "pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection slot free in time", request=request) from exc
        try:
            yield
        finally:
            self._slots.release()

    def _reuse(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.reusable(self._expiry):
                return connection
            connection.close()
        return None

    def _release(self, origin: Origin, connection: Connection, keep_alive: bool) -> None:
        idle_total = sum(len(c) for c in self._idle.values())
        if not keep_alive or self._closed or idle_total >= self._keep:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, []).append(connection)

    async def _connect(self, request: httpx.Request, origin: Origin) -> Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(_timeout(request, "connect")):
                try:
                    addresses = await self.policy.addresses(host, port)
                except (DestinationRefused, DestinationUnresolved) as exc:
                    raise httpx.ConnectError(str(exc), request=request) from exc
                failure: OSError | None = None
                for address in addresses:
                    try:
                        reader, writer = await asyncio.open_connection(
                            address,
                            port,
                            ssl=self._ssl if scheme == b"https" else None,
                            server_hostname=host if scheme == b"https" else None,
                            limit=MAX_HEAD_BYTES,
                        )
                    except OSError as exc:
                        failure = exc  # the next address of the name may answer
                        continue
                    return Connection(reader, writer)
        except TimeoutError as exc:
            message = f"connect to {host}:{port} timed out"
            raise httpx.ConnectTimeout(message, request=request) from exc
        assert failure is not None  # addresses() never returns an empty list
        raise httpx.ConnectError(str(failure), request=request) from failure

    async def _exchange(
        self,
        request: httpx.Request,
        connection: Connection,
        method: bytes,
        head: bytes,
        body: bytes,
    ) -> WireResponse:
        try:
            async with asyncio.timeout(_timeout(request, "write")):
                await connection.send(head, body)
        except TimeoutError as exc:
            raise httpx.WriteTimeout("request write timed out", request=request) from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Disconnected(str(exc)) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from exc
        try:
            async with asyncio.timeout(_timeout(request, "read")):
                return await connection.read_response(method)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("response read timed out", request=request) from exc
        except Disconnected:
            raise
        except WireError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc


class GuardedClient(httpx.AsyncClient):
    """The client :func:`guarded_client` makes, with :meth:`post_bytes`."""

    def __init__(self, transport: GuardedTransport, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self.guarded = transport
        #: Parsed URLs by their text: a client posts to a handful of URLs (the Worker's,
        #: each webhook's), and parsing one cost half of building the request.
        self._urls: dict[str, httpx.URL] = {}

    async def post_bytes(
        self,
        url: str,
        *,
        content: bytes,
        timeouts: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``post(url, content=..., headers=..., timeout=timeouts)``, read whole,
        straight through the guarded transport (``timeouts``: httpx's per phase).

        Why: the client's per-request machinery (cookie jar, auth and redirect
        flows, event hooks) cost 80-100 us of CPU per loopback POST (issue 16,
        three POSTs per email), and none of it applies here: no redirects are
        followed, no cookies or auth flows are used. The request is the one the
        client would send: its default headers (``Accept``, ``Accept-Encoding``,
        ``Connection``, ``User-Agent``) and the client's own, then ``headers``.
        """
        merged = httpx.Headers(self.headers)
        if headers:
            merged.update(headers)
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _PARSED_URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            "POST",
            parsed,
            content=content,
            headers=merged,
            extensions={"timeout": timeouts.as_dict()},
        )
        response = await self.guarded.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: httpx.Timeout | float,
    verify: bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    headers: dict[str, str] | None = None,
) -> GuardedClient:
    """An ``httpx.AsyncClient`` for outbound calls: guarded, no redirects, no proxies."""
    return GuardedClient(
        GuardedTransport(policy, verify=verify, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )


def refusal(exc: BaseException) -> DestinationRefused | None:
    """The policy refusal behind an httpx error, or None.

    The chain is followed through ``__context__`` as well as ``__cause__``:
    a caller may wrap the error again without ``from``.
    """
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None or isinstance(seen, DestinationRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
