"""Provider links found in an email's decoded text and HTML.

Input is *decoded* content (quoted-printable soft breaks and base64 already
undone by the MIME reader), so a link split across encoded lines is whole here.
The scan is one compiled regex with bounded repetitions: it only starts at
``http``, every quantifier has an upper bound or stops at a delimiter, so the
work is linear in the input. At most ``max_links`` distinct links are returned.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from render_signal.common.events import DeliveryLink
from render_signal.ingest.providers import PROVIDERS, provider_for_host

__all__ = ["MAX_LINKS", "MAX_URL_CHARS", "extract_links"]

#: Distinct links kept per email; real notifications carry a handful.
MAX_LINKS = 200
#: Longest URL taken (Dropbox folder links with rlkey are ~150 chars).
MAX_URL_CHARS = 2048

_DOMAINS = sorted({re.escape(d) for p in PROVIDERS for d in p.domains}, key=len, reverse=True)
_URL = re.compile(
    r"https?://(?:[a-z0-9-]{1,63}\.){0,8}(?:" + "|".join(_DOMAINS) + r")"
    r"(?::\d{1,5})?[/?#][^\s<>\"']{0," + str(MAX_URL_CHARS) + "}",
    re.IGNORECASE,
)
_CUT = re.compile(r"[\s<>\"']")
_TRAILING = ".,;:!?)]}*"


def _clean(url: str) -> str:
    """HTML-unescape, cut at a delimiter the entity hid, drop trailing punctuation."""
    if "&" in url:
        url = html.unescape(url)
        cut = _CUT.search(url)
        if cut:
            url = url[: cut.start()]
    return url.strip().rstrip(_TRAILING)


def _classify(url: str) -> str | None:
    """Provider name when ``url`` is a transfer link of a known shape, else None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return None
    provider = provider_for_host(host)
    if provider is None:
        return None
    target = parts.path + ("?" + parts.query if parts.query else "")
    if not provider.shapes.match(target):
        return None
    if provider.ignore is not None and provider.ignore(parts.path, parts.query):
        return None
    return provider.name


def extract_links(*texts: str, max_links: int = MAX_LINKS) -> list[DeliveryLink]:
    """Distinct provider links in order of first appearance across ``texts``."""
    seen: set[str] = set()
    rejected: set[str] = set()
    links: list[DeliveryLink] = []
    for text in texts:
        if not text:
            continue
        for match in _URL.finditer(text):
            url = _clean(match.group(0))
            if url in seen or url in rejected:
                continue
            provider = _classify(url)
            if provider is None:
                if len(rejected) < 10_000:
                    rejected.add(url)
                continue
            seen.add(url)
            links.append(DeliveryLink(provider=provider, raw_url=url))
            if len(links) >= max_links:
                return links
    return links
