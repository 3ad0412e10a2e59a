"""Provider links found in an email's decoded text and HTML.

Input is *decoded* content (quoted-printable soft breaks and base64 already
undone by the MIME reader), so a link split across encoded lines is whole here.
The scan is one compiled regex with bounded repetitions: it only starts at
``http``, every quantifier has an upper bound or stops at a delimiter, so the
work is linear in the input. At most ``max_links`` distinct links are returned.

As lenient as the original where it matters (it took any URL on a provider
host): a URL on a provider's own host (``dropbox.com``, ``www.dropbox.com``)
whose path is none of the transfer shapes we know is kept, flagged
``unknown_shape``, unless it is one of the site's own pages (help, pricing, a
language root...). Lookalike hosts stay refused. A link wrapped by a
mail-security gateway is unwrapped first (:mod:`render_signal.ingest.gateways`).
Typographic punctuation (closing quotes, guillemets, ellipsis, full-width
marks) ends a URL wherever it appears: no provider link contains it raw.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

from render_signal.common.events import DeliveryLink
from render_signal.ingest.gateways import GATEWAY_DOMAINS, unwrap
from render_signal.ingest.providers import PROVIDERS, is_site_page, provider_for_host

__all__ = ["MAX_LINKS", "MAX_URL_CHARS", "extract_links"]

#: Distinct links kept per email; real notifications carry a handful.
MAX_LINKS = 200
#: Longest URL taken (Dropbox folder links with rlkey are ~150 chars).
MAX_URL_CHARS = 2048

_HOSTS = {d for p in PROVIDERS for d in p.domains} | set(GATEWAY_DOMAINS)
_DOMAINS = sorted((re.escape(d) for d in _HOSTS), key=len, reverse=True)
_URL = re.compile(
    r"https?://(?:[a-z0-9-]{1,63}\.){0,8}(?:" + "|".join(_DOMAINS) + r")"
    r"(?::\d{1,5})?[/?#][^\s<>\"']{0," + str(MAX_URL_CHARS) + "}",
    re.IGNORECASE,
)
_CUT = re.compile(r"[\s<>\"']")
_TRAILING = ".,;:!?)]}*"
#: Gateways inside gateways (Safe Links around Proofpoint) are unwrapped this deep.
MAX_UNWRAP = 3


def _typographic(char: str) -> bool:
    """Non-ASCII punctuation, symbols or spaces: ’ ” » … 。 ） and their kin."""
    return not char.isascii() and unicodedata.category(char)[0] in "PZS"


def _typographic_cut(url: str) -> int | None:
    """Index of the first typographic mark in ``url``, or None."""
    if url.isascii():
        return None
    return next((i for i, char in enumerate(url) if _typographic(char)), None)


def _clean(url: str) -> str:
    """HTML-unescape, cut at a delimiter or typographic mark, drop trailing punctuation."""
    if "&" in url:
        url = html.unescape(url)
        cut = _CUT.search(url)
        if cut:
            url = url[: cut.start()]
    end = _typographic_cut(url)  # an entity may have produced one (&raquo;)
    if end is not None:
        url = url[:end]
    return url.strip().rstrip(_TRAILING)


def _classify(url: str) -> tuple[str, tuple[str, ...]] | None:
    """``(provider, flags)`` when ``url`` is a transfer link, else None."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    provider = provider_for_host(host)
    if provider is None:
        return None
    if provider.ignore is not None and provider.ignore(parts.path, parts.query):
        return None
    target = parts.path + ("?" + parts.query if parts.query else "")
    if provider.shapes.match(target):
        return provider.name, ()
    own_host = host in provider.domains or host.removeprefix("www.") in provider.domains
    if own_host and not is_site_page(parts.path):
        return provider.name, ("unknown_shape",)
    return None


def _resolve(url: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(url, provider, flags)`` of a link, gateway wrappers removed; None if not one."""
    flags: tuple[str, ...] = ()
    for _ in range(MAX_UNWRAP):
        found = unwrap(url)
        if found is None:
            break
        if found.target is None:
            # Mimecast's opaque token: keep the link itself when it names a provider host.
            provider = provider_for_host(found.domain) if found.domain else None
            if provider is None or found.gateway != "mimecast":
                return None
            return url, provider.name, (*flags, "mimecast_opaque")
        flags = (*flags, f"unwrapped:{found.gateway}")
        url = _clean(found.target)
    classified = _classify(url)
    if classified is None:
        return None
    return url, classified[0], (*flags, *classified[1])


def _search_url(text: str, pos: int) -> re.Match[str] | None:
    """``_URL.search(text, pos)``, trying only the starts 4 or 5 characters before a
    "://" (every match has one there): a plain substring search finds those, where
    the case-insensitive pattern tried every position (most of ``extract_links``'
    CPU, bench/results/flame-ingest-gil.svg). Leftmost first, so the same match.
    """
    found = text.find("://", pos + 4)
    while found >= 0:
        for start in (found - 5, found - 4):
            if start >= pos:
                match = _URL.match(text, start)
                if match:
                    return match
        found = text.find("://", found + 1)
    return None


def extract_links(*texts: str, max_links: int = MAX_LINKS) -> list[DeliveryLink]:
    """Distinct provider links in order of first appearance across ``texts``."""
    seen: set[str] = set()
    rejected: set[str] = set()
    links: list[DeliveryLink] = []
    for text in texts:
        if not text:
            continue
        pos = 0
        while match := _search_url(text, pos):
            candidate = match.group(0)
            # A mark glued to the URL ends it; the scan resumes there, so a link
            # right after it ("…12。次（https://…") is found too.
            cut = _typographic_cut(candidate)
            if cut is not None:
                candidate = candidate[:cut]
            pos = match.start() + cut if cut is not None else match.end()
            found = _clean(candidate)
            if found in rejected:
                continue
            resolved = _resolve(found)
            if resolved is None:
                if len(rejected) < 10_000:
                    rejected.add(found)
                continue
            url, provider, flags = resolved
            if url in seen:
                continue
            seen.add(url)
            links.append(DeliveryLink(provider=provider, raw_url=url, flags=flags))
            if len(links) >= max_links:
                return links
    return links
