"""httpx clients that connect only where :class:`~.outbound.OutboundPolicy` allows.

The check runs inside the connection pool, at connect time:
:class:`GuardedNetworkBackend` wraps httpcore's network backend, resolves the
host itself, refuses the connection when any address is forbidden, and opens
the socket to the address it checked (pinned: there is no second lookup a
rebinding DNS server could answer differently). TLS is unchanged: httpcore
still sends the URL's host name as SNI and verifies the certificate against
it, and the ``Host`` header still carries the name.

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

import ssl
import typing

import httpcore
import httpx
from render_signal.common.errors import DestinationRefused, DestinationUnresolved
from render_signal.common.outbound import OutboundPolicy

__all__ = ["GuardedNetworkBackend", "GuardedTransport", "guarded_client", "refusal"]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked one (see the module docstring)."""

    def __init__(
        self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.addresses(host, port)
        except (DestinationRefused, DestinationUnresolved) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address of the name may answer
        assert failure is not None  # addresses() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose pool connects through :class:`GuardedNetworkBackend`."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        verify: bool | ssl.SSLContext = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        # Not super().__init__(): it builds the same pool on the default network
        # backend, which is exactly what this class replaces.
        self._pool = httpcore.AsyncConnectionPool(
            # trust_env here only reads SSL_CERT_FILE/SSL_CERT_DIR (the client ignores proxies).
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=True),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy),
        )


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: httpx.Timeout | float,
    verify: bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for outbound calls: guarded, no redirects, no proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, verify=verify, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )


def refusal(exc: BaseException) -> DestinationRefused | None:
    """The policy refusal behind an httpx error (httpx -> httpcore -> ours), or None.

    httpcore re-raises its own copy of the error, so the chain runs through
    ``__context__`` as well as ``__cause__``.
    """
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None or isinstance(seen, DestinationRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
