"""Which URLs may be a webhook target (or any outbound destination we are told to call).

Two layers:

* :func:`target_url_problem` -- syntax, applied wherever a URL is stored or read
  (config documents, environment): http(s), a host, no whitespace, at most
  2048 characters, never a placeholder host (``example.com``...; the original
  lost two emails to one);
* :func:`policy_problem` -- where it may point: https only and no loopback
  outside dev mode (dev mode allows loopback over plain http, where people and
  tests run local receivers).
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK_HOSTS",
    "PLACEHOLDER_HOSTS",
    "host_of",
    "is_loopback_host",
    "is_placeholder_host",
    "policy_problem",
    "target_url_problem",
]

#: Webhook hosts that are never real receivers.
PLACEHOLDER_HOSTS = frozenset(
    {"example.com", "example.net", "example.org", "test.com", "example.invalid", "invalid"}
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
MAX_URL_LENGTH = 2048


def is_placeholder_host(host: str) -> bool:
    """True for example.com-style hosts and their subdomains."""
    host = host.lower().rstrip(".")
    return any(host == p or host.endswith("." + p) for p in PLACEHOLDER_HOSTS)


def is_loopback_host(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


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


def policy_problem(url: str, *, dev_mode: bool) -> str | None:
    """Why ``url`` may not be called in this mode, or None (syntax checked first)."""
    problem = target_url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    loopback = is_loopback_host((parts.hostname or "").lower())
    if loopback and not dev_mode:
        return "loopback host refused outside dev mode"
    if parts.scheme != "https" and not (loopback and dev_mode):
        return "must use https"
    return None
