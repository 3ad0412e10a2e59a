"""Security headers, the last-resort 500, and who/how the client connected.

``X-Forwarded-Proto``/``X-Forwarded-For`` are believed only when the direct
peer is one of ``TRUSTED_PROXIES``; anyone else could forge them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityMiddleware", "client_ip", "is_https"]

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


def _trusted(peer: str | None, trusted_proxies: Sequence[str]) -> bool:
    return bool(peer) and (peer in trusted_proxies or "*" in trusted_proxies)


def is_https(request: Request, trusted_proxies: Sequence[str]) -> bool:
    """True when the browser talks https to us (directly or via a trusted proxy)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else None
    if _trusted(peer, trusted_proxies):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def client_ip(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The client's address; the forwarded one only behind a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if _trusted(peer, trusted_proxies):
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1] if hops[-1] not in trusted_proxies else hops[0]
    return peer


class SecurityMiddleware:
    """Adds the security headers to every response; turns crashes into a bare 500."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        https = is_https(request, self.trusted_proxies)
        magic_page = scope.get("path", "").startswith("/login/magic/")
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
