"""The file-transfer providers we recognise: one table entry per provider.

Adding a provider means adding one :class:`Provider` to :data:`PROVIDERS`: its
name (published as ``DeliveryLink.provider``), the registrable domains it
serves links from (subdomains such as ``www.`` are accepted), and the shapes
of path (+ query) that are transfer links rather than marketing or help pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = ["PROVIDERS", "Provider", "is_site_page", "provider_for_host"]


@dataclass(frozen=True)
class Provider:
    """One provider: name, domains, accepted link shapes, assets to ignore."""

    name: str
    domains: tuple[str, ...]
    #: Matched (``re.match``) against the path plus ``?query`` of the URL.
    shapes: re.Pattern[str]
    #: ``(path, query) -> True`` for assets (logos, avatars) that are not transfers.
    ignore: Callable[[str, str], bool] | None = None


_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
_ASSET_PREFIXES = ("ms", "logo", "avatar", "profile")


def _dropbox_asset(path: str, query: str) -> bool:
    """The original's rule: a ``/scl/fi/`` image, ``raw=1``, named ms/logo/avatar/profile*."""
    if "/scl/fi/" not in path.lower():
        return False
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    if not name.endswith(_IMAGE_EXTENSIONS) or not name.startswith(_ASSET_PREFIXES):
        return False
    return any(k.lower() == "raw" and v == "1" for k, v in parse_qsl(query[:2048]))


_ID = r"[A-Za-z0-9_~.%-]+"

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        name="dropbox",
        domains=("dropbox.com",),
        shapes=re.compile(
            rf"/(?:s/{_ID}|sh/{_ID}|scl/fi/{_ID}|request/{_ID}"
            rf"|scl/fo/[^?#]{{1,1024}}\?(?:[^#]{{0,1024}}&)?rlkey=[^&#]+)",
            re.IGNORECASE,
        ),
        ignore=lambda path, query: _dropbox_asset(path, query),
    ),
    Provider(
        name="fromsmash",
        domains=("fromsmash.com",),
        shapes=re.compile(r"/[A-Za-z0-9_-]+", re.IGNORECASE),
    ),
    Provider(
        name="swisstransfer",
        domains=("swisstransfer.com",),
        shapes=re.compile(
            r"/d/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
        ),
    ),
    Provider(
        name="wetransfer",
        domains=("wetransfer.com", "we.tl"),
        shapes=re.compile(r"/(?:downloads/[A-Za-z0-9]|[A-Za-z0-9]+-[A-Za-z0-9]+)", re.IGNORECASE),
    ),
)

_BY_DOMAIN = {domain: provider for provider in PROVIDERS for domain in provider.domains}

#: A provider's own pages, not transfers: its home or a language root, a site
#: section (optionally under a language prefix), or a static asset.
_SITE_PAGE = re.compile(
    r"/?(?:[a-z]{2}(?:[-_][a-z]{2,4})?/?)?$"
    r"|/(?:[a-z]{2}(?:[-_][a-z]{2,4})?/)?(?:help|support|features?|pricing|plans|business"
    r"|teams?|enterprise|education|login|log-?in|sign-?in|register|sign-?up|logout|account"
    r"|legal|privacy|terms|cookies|security|about|contact|blog|news|press|jobs|careers"
    r"|downloads?|install|apps?|mobile|desktop|developers?|partners?|static|assets|images?"
    r"|img|css|js|fonts?)(?:/.*)?$"
    r"|.*\.(?:png|jpe?g|gif|webp|svg|ico|css|js|woff2?)$",
    re.IGNORECASE,
)


def is_site_page(path: str) -> bool:
    """True for a provider's own pages (home, help, pricing, assets): never a transfer."""
    return _SITE_PAGE.match(path[:1024]) is not None


def provider_for_host(host: str) -> Provider | None:
    """The provider serving ``host`` (exact domain or any subdomain of it)."""
    host = host.lower().rstrip(".")
    if host in _BY_DOMAIN:
        return _BY_DOMAIN[host]
    for domain, provider in _BY_DOMAIN.items():
        if host.endswith("." + domain):
            return provider
    return None
