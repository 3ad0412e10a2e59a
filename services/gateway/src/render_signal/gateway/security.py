"""Security headers, the last-resort 500, and who/how the client connected.

:class:`ProxyPolicy` decides whose ``X-Forwarded-For``/``-Proto`` to believe,
in one of two ways (never both):

* ``TRUSTED_PROXIES``: addresses or networks of the proxies. The headers count
  only when the direct peer is one of them; the client is the rightmost
  ``X-Forwarded-For`` entry that is not a trusted proxy;
* ``TRUSTED_PROXY_HOPS=n``: for platforms whose load balancer addresses are
  unknown but which always put exactly ``n`` proxies in front (Render: 1). The
  client is the entry ``n`` places from the right, the one the outermost of
  those proxies appended; entries left of it are whatever the client sent.

``TRUSTED_PROXIES=*`` (believe anyone, so a direct client picks its own
address) is refused outside dev mode. :class:`SecurityMiddleware` applies the
policy once per request and rewrites the ASGI scope (``client``, ``scheme``),
so :func:`client_ip`, :func:`is_https` and ``request.base_url`` agree
everywhere downstream (uvicorn's own proxy handling stays off).

Every response but static files carries ``Cache-Control: no-store``: API
answers hold sessions' CSRF tokens, unmasked exports, webhook logs.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import logging
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSP",
    "ProxyPolicy",
    "SecurityMiddleware",
    "bearer_matches",
    "client_ip",
    "is_https",
]

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_NO_STORE = (b"cache-control", b"no-store")


def _entries(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@functools.cache
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class ProxyPolicy:
    """Whose forwarded headers to believe (see the module docstring)."""

    def __init__(self, trusted: Sequence[str] = (), hops: int = 0) -> None:
        self.any_peer = "*" in trusted
        self.networks = [n for t in trusted if t != "*" and (n := _network(t)) is not None]
        self.hops = hops

    def trusts(self, address: str | None) -> bool:
        if not address:
            return False
        if self.any_peer:
            return True
        parsed = _network(address)
        if parsed is None:
            return False
        return any(
            parsed.version == n.version and parsed.subnet_of(n)  # type: ignore[arg-type]
            for n in self.networks
        )

    def resolve(self, peer: str | None, headers: Headers) -> tuple[str | None, bool]:
        """``(client address, forwarded as https)`` for a request from ``peer``."""
        chain = _entries(headers.get("x-forwarded-for", ""))
        protos = _entries(headers.get("x-forwarded-proto", "").lower())
        if self.hops:
            client = chain[-self.hops] if len(chain) >= self.hops else peer
            return client, bool(protos) and protos[-1] == "https"
        if not self.trusts(peer):
            return peer, False
        untrusted = [address for address in chain if not self.trusts(address)]
        client = untrusted[-1] if untrusted else (chain[0] if chain else peer)
        return client, bool(protos) and protos[-1] == "https"


def bearer_matches(request: Request, expected: str) -> bool:
    """``Authorization: Bearer <expected>`` (or the bare token, as the original's Apps
    Script sends it), compared in constant time; never true for an empty ``expected``."""
    header = request.headers.get("authorization", "").strip()
    token = header[7:].strip() if header[:7].lower() == "bearer " else header
    return bool(token and expected) and hmac.compare_digest(token.encode(), expected.encode())


def is_https(request: Request) -> bool:
    """True when the browser talks https to us (directly or via a believed proxy)."""
    return request.url.scheme == "https"


def client_ip(request: Request) -> str:
    """The client's address (the forwarded one only as :class:`ProxyPolicy` allows)."""
    return request.client.host if request.client else "unknown"


class SecurityMiddleware:
    """Resolves the client behind proxies, adds the security headers to every response,
    and turns crashes into a bare 500."""

    def __init__(self, app: ASGIApp, proxies: ProxyPolicy | None = None) -> None:
        self.app = app
        self.proxies = proxies or ProxyPolicy()

    def _forwarded(self, scope: Scope) -> Scope:
        peer = scope["client"][0] if scope.get("client") else None
        client, https = self.proxies.resolve(peer, Headers(scope=scope))
        if client == peer and not https:
            return scope
        port = scope["client"][1] if scope.get("client") else 0
        scheme = "https" if https else scope.get("scheme", "http")
        return {**scope, "client": (client or "unknown", port), "scheme": scheme}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = self._forwarded(scope)
        https = scope.get("scheme") == "https"
        path = scope.get("path", "")
        magic_page = path.startswith("/login/magic/")
        cacheable = path.startswith("/static/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _BASE_HEADERS if k not in present]
                if b"referrer-policy" not in present:
                    policy = b"no-referrer" if magic_page else b"strict-origin-when-cross-origin"
                    headers.append((b"referrer-policy", policy))
                if https:
                    headers.append(_HSTS)
                if not cacheable and b"cache-control" not in present:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("GATEWAY: unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            body = json.dumps({"success": False, "message": "Internal server error"}).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
