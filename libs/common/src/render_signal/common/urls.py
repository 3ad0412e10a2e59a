"""Which URLs may be a webhook target (or any outbound destination we are told to call).

Three layers:

* :func:`target_url_problem` -- syntax, applied wherever a URL is stored or read
  (config documents, environment): http(s), a host, no whitespace, at most
  2048 characters, never a placeholder host (``example.com``...; the original
  lost two emails to one);
* :func:`policy_problem` -- where it may point, without DNS: https only, and
  a host written as an address must be public (:mod:`.outbound`); dev mode
  allows loopback, over plain http too, where people and tests run local
  receivers. This is what the environment gets at start;
* :func:`url_problem` -- the same plus the resolved addresses of a name, for
  URLs saved through the API (the connect-time check in :mod:`.outboundhttp`
  is the one that cannot be raced).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from render_signal.common.errors import DestinationRefused, DestinationUnresolved
from render_signal.common.outbound import (
    IPNetwork,
    OutboundPolicy,
    host_problem,
    is_loopback_host,
)

__all__ = [
    "PLACEHOLDER_HOSTS",
    "host_of",
    "is_loopback_host",
    "is_placeholder_host",
    "policy_problem",
    "target_url_problem",
    "url_problem",
]

#: Webhook hosts that are never real receivers.
PLACEHOLDER_HOSTS = frozenset(
    {"example.com", "example.net", "example.org", "test.com", "example.invalid", "invalid"}
)
MAX_URL_LENGTH = 2048


def is_placeholder_host(host: str) -> bool:
    """True for example.com-style hosts and their subdomains."""
    host = host.lower().rstrip(".")
    return any(host == p or host.endswith("." + p) for p in PLACEHOLDER_HOSTS)


def host_of(url: str) -> str:
    """The lowercased host of ``url`` ("" when it has none or cannot be parsed)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def target_url_problem(url: str) -> str | None:
    """Why ``url`` can't be a target at all, or None when its syntax is acceptable."""
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        return "is not a valid URL"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises on a non-numeric port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    if not host:
        return "has no host"
    if is_placeholder_host(host):
        return f"placeholder host {host} refused"
    return None


def policy_problem(url: str, *, dev_mode: bool, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why ``url`` may not be called in this mode, or None (syntax checked first).

    ``allowed``: the internal networks the operator named (``OUTBOUND_ALLOW_NETWORKS``).
    """
    problem = target_url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    problem = host_problem(host, dev_mode=dev_mode, allowed=allowed)
    if problem is not None:
        return problem
    if parts.scheme != "https" and not (dev_mode and is_loopback_host(host)):
        return "must use https"
    return None


async def url_problem(url: str, policy: OutboundPolicy) -> str | None:
    """:func:`policy_problem`, then every address the host resolves to.

    A name that does not resolve now is accepted: DNS may be down, and the
    connect-time check refuses it later if it then points somewhere forbidden.
    """
    problem = policy_problem(url, dev_mode=policy.dev_mode, allowed=policy.allowed)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    try:
        await policy.addresses(parts.hostname or "", parts.port or 443)
    except DestinationRefused as exc:
        return str(exc)
    except DestinationUnresolved:
        return None
    return None
