"""SSRF guard: which URLs may ever be handed to the R2 Worker.

Only ``https`` URLs on port 443 whose host equals, or is a subdomain of, one of
the provider domains pass. Userinfo is refused (``https://dropbox.com@evil``
tricks), as are IP literals. Everything else stays a plain source link: the
Python side never fetches it and never sends it to the Worker.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["ALLOWED_DOMAINS", "allowed_host", "refusal_reason"]

#: Provider domains (and their subdomains) the Worker may fetch from.
ALLOWED_DOMAINS = frozenset(
    {"dropbox.com", "fromsmash.com", "swisstransfer.com", "wetransfer.com", "we.tl"}
)


def allowed_host(host: str) -> bool:
    """True when ``host`` is a provider domain or one of its subdomains (exact labels)."""
    host = host.lower()
    if not host or host.endswith("."):
        return False
    return any(host == d or host.endswith("." + d) for d in ALLOWED_DOMAINS)


def refusal_reason(url: str) -> str | None:
    """Why ``url`` must not reach the Worker, or None when it may."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "unparseable url"
    if parts.scheme != "https":
        return "not https"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "userinfo in url"
    if port not in (None, 443):
        return "non-default port"
    if not allowed_host(parts.hostname or ""):
        return "host not allowlisted"
    return None
